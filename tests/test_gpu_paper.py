"""``benchmarks/gpu_paper.py`` runs end to end at toy size on the CPU (the GPU run is the same code at paper size)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_paper.py"


def test_two_segments_on_the_cpu(tmp_path):
    out = tmp_path / "result.json"
    command = [sys.executable, str(SCRIPT), "--preset", "tiny", "--device", "cpu", "--steps", "2",
               "--height", "64", "--width", "64", "--threads", "1", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    first, second = data["segments"]
    assert not first["memory"] and second["memory"] and second["fusion_steps"] >= 1
    assert data["frames"] == 2 * data["segment_frames"] - data["overlap"] - 1
    for row in data["segments"]:
        assert len(row["seconds_per_step"]) == 2 and row["seconds"] >= row["denoise_s"] > 0 and row["decode_s"] > 0
    assert data["peak_gib"] is None and data["estimated_peak_gib"] > 0  # no CUDA: no measured peak
    assert data["placement"] == {"dtype": "fp32", "vae_dtype": "fp32", "offload": "none", "vae_tiling": True,
                                 "memory_resident": False}
    assert "s/step" in result.stdout and str(out) in result.stdout


def test_no_gpu_is_a_one_line_error():
    command = [sys.executable, str(SCRIPT), "--device", "cuda:7"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode != 0 and result.stderr.strip().startswith("error:")
