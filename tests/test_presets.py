"""Presets, the whole-model folder and ``longanimation info``."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from longanimation.errors import UserError
from longanimation.models.longanimation_model import (
    LongAnimationModel,
    count_parameters,
)
from longanimation.models.presets import get_preset
from longanimation.models.sketch_dit import SketchDiT

PAPER_BACKBONE = 5.57e9


def states_equal(first: torch.nn.Module, second: torch.nn.Module) -> bool:
    a, b = first.state_dict(), second.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)


@pytest.fixture(scope="module")
def tiny() -> LongAnimationModel:
    model = LongAnimationModel.from_preset("tiny", seed=3)
    torch.nn.init.normal_(model.sketch_dit.out_projection.weight)  # as if trained: not all zero
    return model


def test_tiny_preset_fits_together():
    preset = get_preset("tiny")
    transformer, vae = preset.backbone.transformer, preset.backbone.vae
    width = transformer["num_attention_heads"] * transformer["attention_head_dim"]
    assert (transformer["in_channels"], transformer["out_channels"], vae["latent_channels"]) == (32, 16, 16)
    assert transformer["patch_size_t"] == 2 and transformer["ofs_embed_dim"] == transformer["time_embed_dim"]
    assert transformer["text_embed_dim"] == preset.backbone.text_encoder["d_model"]
    assert 2 ** (len(vae["block_out_channels"]) - 1) == 4 and vae["temporal_compression_ratio"] == 1
    assert transformer["temporal_compression_ratio"] == 1
    assert transformer["sample_height"] == preset.segment.height // 4  # the latent grid
    assert preset.sketch_dit.inner_dim == preset.dglm.sketch_dim == width
    assert preset.dglm.memory_dim == preset.memory_model.kv_width
    assert (preset.segment.frames - 1) % 4 == 0 and preset.segment.overlap % 4 == 0
    with pytest.raises(UserError, match="unknown preset"):
        get_preset("huge")


def test_paper_preset_shapes_on_meta():
    model = LongAnimationModel.from_preset("paper", device="meta")
    assert next(model.parameters()).device.type == "meta"
    assert abs(count_parameters(model.backbone.transformer) / PAPER_BACKBONE - 1) < 0.01
    assert 0.75e9 < count_parameters(model.sketch_dit) < 0.85e9
    config = model.backbone.transformer.config
    assert (config.num_layers, config.num_attention_heads * config.attention_head_dim) == (42, 3072)
    assert model.denoiser().injected_blocks == list(range(1, 42, 2))
    assert (model.segment.frames, model.segment.overlap, model.segment.num_inference_steps) == (81, 16, 50)


def test_sketch_dit_round_trip(tiny, tmp_path):
    tiny.sketch_dit.save_pretrained(tmp_path / "sketch")
    loaded = SketchDiT.from_pretrained(tmp_path / "sketch")
    assert loaded.config == tiny.sketch_dit.config
    assert states_equal(loaded, tiny.sketch_dit)


def test_whole_model_round_trip(tiny, tmp_path):
    tiny.save_pretrained(tmp_path / "model")
    index = json.loads((tmp_path / "model" / "longanimation.json").read_text())
    assert index["preset"] == "tiny" and index["backbone"] == "backbone"
    loaded = LongAnimationModel.from_pretrained(tmp_path / "model")
    assert states_equal(loaded, tiny)
    assert loaded.segment == tiny.segment and loaded.preset == "tiny"

    tiny.save_pretrained(tmp_path / "parts", include_backbone=False)
    assert not (tmp_path / "parts" / "backbone").exists()
    with pytest.raises(UserError, match="without its backbone"):
        LongAnimationModel.from_pretrained(tmp_path / "parts")
    loaded = LongAnimationModel.from_pretrained(tmp_path / "parts", backbone=tmp_path / "model" / "backbone")
    assert states_equal(loaded, tiny)

    combined = LongAnimationModel.from_parts(
        tmp_path / "model" / "backbone", preset="tiny", sketch_dit=tmp_path / "parts" / "sketch_dit"
    )
    assert states_equal(combined.sketch_dit, tiny.sketch_dit)
    assert not combined.dglm.proj_out.weight.any()  # fresh DGLM: zero output


def test_whole_model_refuses_pickles_and_bad_tensors(tiny, tmp_path):
    tiny.save_pretrained(tmp_path / "model", include_backbone=False)
    weights = tmp_path / "model" / "sketch_dit" / "model.safetensors"
    state = load_file(weights)

    torch.save(state, tmp_path / "model" / "sketch_dit" / "model.pt")
    weights.unlink()
    with pytest.raises(UserError, match="pickle") as error:
        LongAnimationModel.from_pretrained(tmp_path / "model", backbone=tiny.backbone)
    assert "\n" not in str(error.value)
    (tmp_path / "model" / "sketch_dit" / "model.pt").unlink()

    state["transformer_blocks.0.ff.net.0.proj.weight"] = torch.zeros(2, 2)
    save_file(state, weights)
    with pytest.raises(UserError, match=r"mis-shaped: transformer_blocks\.0\.ff\.net\.0\.proj\.weight"):
        LongAnimationModel.from_pretrained(tmp_path / "model", backbone=tiny.backbone)

    with pytest.raises(UserError, match="longanimation.json is missing"):
        LongAnimationModel.from_pretrained(tmp_path / "model" / "sketch_dit")


def test_info_reports_paper_sizes(run_cli):
    result = run_cli("info", "--preset", "paper")
    assert result.returncode == 0, result.stderr
    counts = dict(re.findall(r"^(\S.*?)\s{2,}([\d,]+)\s", result.stdout, flags=re.MULTILINE))
    backbone = int(counts["backbone transformer"].replace(",", ""))
    assert abs(backbone / PAPER_BACKBONE - 1) < 0.01
    assert 0.75e9 < int(counts["SketchDiT"].replace(",", "")) < 0.85e9
    # One registry of stages: the paper's three train SketchDiT, then DGLM twice.
    assert counts["trainable in stage sketchdit"] == counts["SketchDiT"]
    assert counts["trainable in stage memory"] == counts["trainable in stage reward"] == counts["DGLM"]
    assert "backbone.transformer, tiny preset only" in result.stdout


def test_console_entry_point_runs():
    """``python -m longanimation`` in a real process (the other CLI tests call ``main`` in this one)."""
    result = subprocess.run([sys.executable, "-m", "longanimation", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "colorize" in result.stdout, result.stderr
