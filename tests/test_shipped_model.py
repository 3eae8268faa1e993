"""The shipped tiny model: it loads as the default of `colorize` and colors the bundled example."""

from __future__ import annotations

import json

import numpy as np

from longanimation.cli.colorize import DEFAULT_MODEL
from longanimation.data.video_io import read_shot
from longanimation.models.longanimation_model import LongAnimationModel
from longanimation.pipeline.long_animation import ColorizeOptions, LongAnimationPipeline

EXAMPLE = DEFAULT_MODEL.parents[3] / "examples" / "toon-shot"


def test_shipped_model_is_small_safetensors_with_its_training_record():
    files = [path for path in DEFAULT_MODEL.rglob("*") if path.is_file()]
    assert sum(path.stat().st_size for path in files if path.suffix == ".safetensors") <= 60 * 2**20
    assert not any(path.suffix in (".pt", ".pth", ".bin", ".ckpt") for path in files)
    index = json.loads((DEFAULT_MODEL / "longanimation.json").read_text())
    assert index["preset"] == "tiny"
    assert (DEFAULT_MODEL / "training" / "README.md").is_file()


def test_shipped_model_colors_the_bundled_example():
    pipeline = LongAnimationPipeline(LongAnimationModel.from_pretrained(DEFAULT_MODEL))
    sketches = read_shot(EXAMPLE / "lineart", mode="L").frames[:30] < 128
    color = read_shot(EXAMPLE / "color").frames[:30]
    out = pipeline(sketches, {0: color[0]}, "", ColorizeOptions(num_inference_steps=4))
    assert out.written.all() and out.frames.shape == color.shape
    assert np.array_equal(out.frames[0], color[0])  # the keyframe comes back as given
    assert out.frames[1:].std() > 1.0  # an image, not a constant
