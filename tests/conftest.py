"""Shared test set-up: one torch thread (CI has 2 cores), and a CLI runner."""

from __future__ import annotations

import subprocess
import sys

import pytest


def pytest_configure(config):
    try:
        import torch
    except ImportError:  # torch-free test selections still work
        return
    torch.set_num_threads(1)


@pytest.fixture
def run_cli():
    """Run ``longanimation ARGS`` in a subprocess; returns the CompletedProcess (text mode)."""

    def run(*args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "longanimation", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run
