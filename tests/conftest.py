"""Shared test set-up: one torch thread (CI has 2 cores), and a CLI runner."""

from __future__ import annotations

import subprocess

import pytest


def pytest_configure(config):
    try:
        import torch
    except ImportError:  # torch-free test selections still work
        return
    torch.set_num_threads(1)


@pytest.fixture
def run_cli(capsys):
    """Run ``longanimation ARGS``; returns a CompletedProcess (exit code, stdout, stderr as text).

    In this process: :func:`longanimation.cli.app.main` is what the console
    script runs, and a fresh interpreter would spend most of a short command
    importing torch. Tests of what only a real process shows (kill -9, the
    installed script) start one themselves.
    """
    from longanimation.cli.app import main

    def run(*args) -> subprocess.CompletedProcess:
        capsys.readouterr()  # what the test printed before is not the command's
        argv = [str(arg) for arg in args]
        code = main(argv)
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(["longanimation", *argv], code, captured.out, captured.err)

    return run
