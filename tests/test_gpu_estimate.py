"""``longanimation info --estimate HxW``: the GPU memory estimate is monotone the ways it must be."""

from __future__ import annotations

import re

import pytest
import torch

from longanimation.errors import UserError
from longanimation.models.longanimation_model import LongAnimationModel
from longanimation.pipeline.gpu_estimate import (
    PHASES,
    LiveBytes,
    _vae_counting,
    estimate,
    estimate_lines,
    parse_size,
    tracing,
)
from longanimation.pipeline.placement import enable_vae_tiling


def test_live_bytes_follow_views_and_frees():
    base = torch.empty(1000, 1000, device="meta")
    with tracing() as tracker:
        doubled = base * 2  # 4 MB
        flat = doubled.view(-1)  # a view: no bytes, keeps them alive
        del doubled
        added = flat + 1  # 4 MB more: 8 MB alive at once
        del flat, added
        kept = torch.empty(10, device="meta")
    assert isinstance(tracker, LiveBytes)
    assert tracker.peak == 8_000_000 and tracker.live == kept.numel() * 4


def test_attention_is_counted_as_a_fused_kernel():
    q = torch.empty(1, 4, 4096, 32, device="meta")
    with tracing() as tracker:
        torch.nn.functional.scaled_dot_product_attention(q, q, q)
    assert tracker.peak == q.numel() * 4  # the output, not the 4096 x 4096 scores


@pytest.fixture(scope="module")
def tiny():
    return estimate("tiny", 128, 128, "bf16"), estimate("tiny", 192, 192, "bf16")


def test_offload_tiling_and_size_are_monotone(tiny):
    small, large = tiny
    for result in tiny:
        for tiled in (False, True):
            assert result.peak("sequential", tiled) < result.peak("model", tiled) < result.peak("none", tiled)
            assert result.peak("none", tiled) <= result.peak("none", tiled, memory_resident=True)
        for phase in ("encode", "decode"):
            assert result.activations[phase][1] < result.activations[phase][0]  # tiling lowers the VAE part
        for offload in ("none", "model", "sequential"):
            assert result.peak(offload, True) < result.peak(offload, False)
    for phase in PHASES:
        assert large.activations[phase][0] >= small.activations[phase][0]
    assert large.activations["decode"][0] > 2 * small.activations["decode"][0]  # 2.25x the pixels
    for offload in ("none", "model", "sequential"):
        assert large.peak(offload, False) > small.peak(offload, False)
    assert small.weights == large.weights


@pytest.mark.parametrize("preset, size", [("tiny", (72, 72)), ("tiny", (128, 200)), ("paper", (768, 1360))])
def test_tiled_vae_gives_frames_of_the_right_size(preset, size):
    model = LongAnimationModel.from_preset(preset, device="meta")
    backbone = model.backbone
    enable_vae_tiling(backbone.vae)  # tiny: diffusers' 1/6, 1/5 overlaps of a 16-latent tile would not add up
    frames = model.segment.frames
    with tracing() as tracker, _vae_counting(backbone.vae, tracker, tiled=True):  # equal tiles replayed: fast
        latents = backbone.encode_video(torch.empty(1, 3, frames, *size, device="meta"))
        pixels = backbone.decode_latents(latents)
    assert latents.shape[-2:] == tuple(n // backbone.spatial_compression for n in size)
    assert pixels.shape == (1, 3, frames, *size)


def test_a_size_the_tiles_fail_at_is_reported(monkeypatch):
    import longanimation.pipeline.gpu_estimate as module

    monkeypatch.setattr(module, "enable_vae_tiling", lambda vae: vae.enable_tiling())  # diffusers' own overlaps
    result = estimate("tiny", 128, 128)  # its tiles make 136 x 136 frames of 32 x 32 latents
    assert result.peak("none", False) > 0 and result.peak("none", True) is None and not result.tiling_works
    assert "fails" in "\n".join(estimate_lines(result))


def test_fp32_weights_need_more():
    assert estimate("tiny", 128, 128, "fp32").peak("none", True) > estimate("tiny", 128, 128, "bf16").peak("none", True)


def test_bad_sizes():
    with pytest.raises(UserError, match="HEIGHTxWIDTH"):
        parse_size("768")
    with pytest.raises(UserError, match="multiple of 8"):
        estimate("tiny", 100, 128)


def test_info_prints_the_paper_estimate(run_cli):
    result = run_cli("info", "--preset", "paper", "--estimate", "768x1360")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "ESTIMATED (not measured)" in text and "44,880 vision tokens" in text and "An estimate" in text
    peaks = {}
    for label in ("none", "model", "sequential"):
        match = re.search(rf"--offload {label}\s+([\d.]+)\s+([\d.]+)\n", text)
        peaks[label] = float(match[1]), float(match[2])
    for column in (0, 1):
        assert peaks["sequential"][column] <= peaks["model"][column] < peaks["none"][column]
    assert all(tiled < whole for whole, tiled in peaks.values())
    assert 20 < peaks["none"][1] < 80  # bf16 5B + 7B memory model, tiled: tens of GiB, not hundreds


def test_info_refuses_a_bad_size(run_cli):
    result = run_cli("info", "--estimate", "big")
    assert result.returncode != 0 and "HEIGHTxWIDTH" in result.stderr and "parameters" not in result.stdout
