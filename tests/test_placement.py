"""Placement for inference (device, dtype, offload, VAE tiling) through the whole pipeline on the tiny preset.

On the CPU, offloading to CPU RAM moves nothing, so every placement must give
the unplaced pipeline's frames exactly (fp32); bf16 runs and keeps the
sampler's latents in float32.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from longanimation.data.toon import ToonConfig, ToonWorld
from longanimation.errors import UserError
from longanimation.models.longanimation_model import LongAnimationModel
from longanimation.pipeline.long_animation import ColorizeOptions, LongAnimationPipeline
from longanimation.pipeline.placement import PlacementOptions, streamed_modules

# Two segments (the second reads the memory and fuses its overlap), guidance on (batch 2), the model's own colors.
OPTIONS = ColorizeOptions(
    num_inference_steps=2, guidance_scale=2.0, height=64, width=64, correspondence="none", collapse_held_drawings=False
)


@pytest.fixture(scope="module")
def shot():
    clip = ToonWorld(ToonConfig(seed=21, frames=24, height=64, width=64)).render_range(0, 24)
    return clip.lineart, clip.color


def colorize(shot, placement, options=OPTIONS, frames=24):
    sketches, colors = shot
    pipeline = LongAnimationPipeline(LongAnimationModel.from_preset("tiny", seed=0), placement)
    out = pipeline(sketches[:frames], {0: colors[0]}, "a red ball", options)
    return pipeline, out


@pytest.fixture(scope="module")
def unplaced(shot):
    return colorize(shot, None)[1].frames


@pytest.mark.parametrize("offload", ["none", "model", "sequential"])
def test_every_offload_gives_the_unplaced_frames(shot, unplaced, offload):
    pipeline, out = colorize(shot, PlacementOptions(device="cpu", offload=offload))
    assert out.written.all() and out.frames.shape == (24, 64, 64, 3)
    assert np.array_equal(out.frames, unplaced)
    model = pipeline.model
    if offload == "model":  # accelerate hooks bring the denoiser, VAE and text encoder in
        assert all(hasattr(m, "_hf_hook") for m in (pipeline.denoiser, model.backbone.vae, model.backbone.text_encoder))
    if offload == "sequential":  # the layer stacks are streamed (their weights on meta between calls)
        streamed = streamed_modules(model)
        assert streamed and all(hasattr(m, "_hf_hook") for m in streamed)
        assert model.backbone.transformer.transformer_blocks[0].attn1.to_q.weight.device.type == "meta"
        assert model.dglm.proj_out.weight.device.type == "cpu"  # read for its device: stays real


def test_none_brings_the_text_encoder_and_memory_model_only_while_they_run(shot, monkeypatch):
    model = LongAnimationModel.from_preset("tiny", seed=0)
    moves = []
    for name, part in (("text", model.backbone.text_encoder), ("memory", model.memory_model)):
        original = part.to
        monkeypatch.setattr(part, "to", lambda *a, _o=original, _n=name, **k: (moves.append((_n, str(a[0]))), _o(*a, **k))[1])
    pipeline = LongAnimationPipeline(model, PlacementOptions(device="cpu"))
    moves.clear()
    assert len(pipeline.plan(shot[0], [0], OPTIONS.resolved(model))[1]) == 2
    pipeline(shot[0], {0: shot[1][0]}, "", OPTIONS)
    text = [device for name, device in moves if name == "text"]
    memory = [device for name, device in moves if name == "memory"]
    assert text == ["cpu", "cpu"]  # to the device for the prompt, back after
    assert len(memory) == 2 * 3  # keyframe pinning, then each of the two segments' new frames: in and out


def test_bf16_weights_with_a_float32_sampler(shot, monkeypatch):
    seen = []
    import longanimation.pipeline.long_animation as module

    original = module.guided_velocity

    def spy(denoiser, latents, *args):
        seen.append(latents.dtype)
        return original(denoiser, latents, *args)

    monkeypatch.setattr(module, "guided_velocity", spy)
    pipeline, out = colorize(
        shot,
        # the VAE in fp32: a CPU without AVX512-BF16 runs bf16 Conv3d in PyTorch's slow reference kernel
        PlacementOptions(device="cpu", dtype="bf16", vae_dtype="fp32", offload="sequential"),
        ColorizeOptions(num_inference_steps=1, height=64, width=64, correspondence="none", collapse_held_drawings=False),
        frames=18,
    )
    assert out.written.all() and out.frames.shape == (18, 64, 64, 3)
    assert set(seen) == {torch.bfloat16} and pipeline.dtype == torch.bfloat16
    assert pipeline.model.sketch_dit.out_projection.weight.dtype == torch.bfloat16
    assert pipeline.model.memory_model.lm.rotary_emb.inv_freq.dtype == torch.float32  # RoPE kept exact
    assert pipeline.model.backbone.vae.dtype == torch.float32


def test_bf16_vae_on_cpu():
    model = LongAnimationModel.from_preset("tiny", seed=0)
    LongAnimationPipeline(model, PlacementOptions(device="cpu", dtype="bf16"))
    with torch.no_grad():
        pixels = model.backbone.decode_latents(torch.zeros(1, 2, 16, 4, 4))
    assert pixels.dtype == torch.bfloat16 and pixels.shape == (1, 3, 2, 16, 16) and pixels.isfinite().all()


def test_vae_tiling_and_slicing_run(shot):
    options = ColorizeOptions(
        num_inference_steps=1, guidance_scale=1.0, height=72, width=72, correspondence="none", collapse_held_drawings=False
    )
    pipeline, out = colorize(shot, PlacementOptions(device="cpu", offload="model", vae_tiling=True, vae_slicing=True), options, 17)
    vae = pipeline.model.backbone.vae
    assert vae.use_tiling and vae.use_slicing and 72 > vae.tile_sample_min_height  # tiles really used
    assert out.written.all() and out.frames.shape == (17, 64, 64, 3)


def test_resume_with_offload_is_identical(shot, tmp_path):
    sketches, colors = shot
    placement = PlacementOptions(device="cpu", offload="model")
    full = colorize(shot, placement)[1].frames
    first = LongAnimationPipeline(LongAnimationModel.from_preset("tiny", seed=0), placement)
    first(sketches, {0: colors[0]}, "a red ball", OPTIONS, state_dir=tmp_path, stop_after_jobs=1)
    second = LongAnimationPipeline(LongAnimationModel.from_preset("tiny", seed=0), placement)
    out = second(sketches, {0: colors[0]}, "a red ball", OPTIONS, state_dir=tmp_path, resume=True)
    assert np.array_equal(out.frames[out.written], full[out.written]) and out.written[-1]


@pytest.mark.parametrize(
    "options, message",
    [
        (PlacementOptions(dtype="fp64"), "--dtype"),
        (PlacementOptions(offload="disk"), "--offload"),
        (PlacementOptions(device="gpu0"), "--device"),
        (PlacementOptions(device="cpu", dtype="fp16"), "fp16 needs a GPU"),
        (PlacementOptions(device="cpu", vae_dtype="fp8"), "--vae-dtype"),
        (PlacementOptions(device="cpu", offload="model", memory_resident=True), "--memory-resident"),
        (PlacementOptions(device="meta"), "meta"),
    ],
)
def test_bad_placement_options(options, message):
    with pytest.raises(UserError, match=message):
        options.resolved()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is there")
def test_cuda_without_a_gpu_is_refused():
    with pytest.raises(UserError, match="no CUDA GPU"):
        PlacementOptions(device="cuda").resolved()


def test_colorize_cli_takes_the_placement_options(tmp_path):
    from PIL import Image

    from longanimation.cli.app import main
    from longanimation.data.video_io import write_png_folder

    clip = ToonWorld(ToonConfig(seed=3, frames=3, height=32, width=32)).render_range(0, 3)
    lines = np.where(clip.lineart, 0, 255).astype(np.uint8)
    write_png_folder(tmp_path / "in", np.repeat(lines[..., None], 3, axis=-1))
    Image.fromarray(clip.color[0]).save(tmp_path / "key.png")
    args = ["colorize", str(tmp_path / "in"), str(tmp_path / "out"), "-k", str(tmp_path / "key.png"), "--steps", "1",
            "--quiet", "--device", "cpu", "--offload", "sequential", "--vae-tiling", "--dtype", "fp32"]
    assert main(args) == 0
    assert len(list((tmp_path / "out" / "frames").glob("*.png"))) == 3
    assert main([*args[:3], str(tmp_path / "bad"), *args[4:-2], "--dtype", "fp64"]) == 2
    assert not (tmp_path / "bad").exists()  # refused before anything was read or written
