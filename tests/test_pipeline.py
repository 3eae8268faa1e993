"""Long-animation inference: any length, keyframes anywhere, held drawings, paradigms, resume, bad input."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from PIL import Image

from longanimation.cli.app import main
from longanimation.data.lineart import lineart_to_image
from longanimation.data.toon import ToonConfig, ToonWorld
from longanimation.errors import UserError
from longanimation.models.longanimation_model import LongAnimationModel
from longanimation.pipeline.long_animation import ColorizeOptions, LongAnimationPipeline
from longanimation.pipeline.output import FrameFolderSink

# Two steps, and the model at the test shots' own 64 x 64 (the preset would upscale them to 128 x 128).
FAST = dict(num_inference_steps=2, guidance_scale=1.0, height=64, width=64)


@pytest.fixture(scope="module")
def pipeline():
    return LongAnimationPipeline(LongAnimationModel.from_preset("tiny", seed=0))


@pytest.fixture(scope="module")
def shot():
    clip = ToonWorld(ToonConfig(seed=21, frames=64, height=64, width=64)).render_range(0, 64)
    return clip.lineart, clip.color


@pytest.mark.parametrize("length", [1, 2, 18, 41])
def test_every_frame_colored_for_any_length(pipeline, shot, length):
    sketches, colors = shot
    options = ColorizeOptions(**FAST, collapse_held_drawings=False)
    out = pipeline(sketches[:length], {0: colors[0]}, "", options)
    assert out.written.all() and out.frames.shape == (length, 64, 64, 3)
    assert np.array_equal(out.frames[0], colors[0])  # the keyframe is kept as given


def test_keyframe_in_the_middle_colors_both_directions(pipeline, shot):
    sketches, colors = shot
    out = pipeline(sketches[:60], {30: colors[30]}, "", ColorizeOptions(**FAST))
    assert out.written.all()
    assert np.array_equal(out.frames[30], colors[30])
    _, jobs = pipeline.plan(sketches[:60], [30], ColorizeOptions(**FAST).resolved(pipeline.model))
    assert {job.run.direction for job in jobs} == {1, -1}


def test_several_keyframes_each_run_uses_its_nearest(pipeline, shot):
    sketches, colors = shot
    options = ColorizeOptions(**FAST).resolved(pipeline.model)
    groups, jobs = pipeline.plan(sketches[:60], [0, 45], options)
    distinct = sorted(set(groups))
    for job in jobs:
        for position in job.run.frames:
            frame = distinct[position]
            assert abs(frame - distinct[job.run.frames[0]]) <= min(abs(frame - 0), abs(frame - 45)) + 1
    out = pipeline(sketches[:60], {0: colors[0], 45: colors[45]}, "", ColorizeOptions(**FAST))
    assert out.written.all() and np.array_equal(out.frames[45], colors[45])


def test_held_drawings_are_colored_once(pipeline, shot):
    sketches, colors = shot
    on_twos = np.repeat(sketches[:20], 2, axis=0)
    calls = []
    options = ColorizeOptions(**FAST)
    out = pipeline(on_twos, {0: colors[0]}, "", options, progress=lambda *a: calls.append(a))
    jobs_twos = calls[-1][1]
    calls.clear()
    pipeline(on_twos, {0: colors[0]}, "", ColorizeOptions(**FAST, collapse_held_drawings=False), progress=lambda *a: calls.append(a))
    jobs_all = calls[-1][1]
    assert jobs_all >= 1.8 * jobs_twos
    assert np.array_equal(out.frames[0::2], out.frames[1::2])


def test_same_seed_same_output_other_seed_differs(pipeline, shot):
    sketches, colors = shot
    first = pipeline(sketches[:30], {0: colors[0]}, "", ColorizeOptions(**FAST, seed=3)).frames
    again = pipeline(sketches[:30], {0: colors[0]}, "", ColorizeOptions(**FAST, seed=3)).frames
    assert np.array_equal(first, again)
    # The seed draws the model's noise; correspondence may carry every pixel of this shot, so compare the model's frames.
    model = [
        pipeline(sketches[:30], {0: colors[0]}, "", ColorizeOptions(**FAST, seed=seed, correspondence="none")).frames
        for seed in (3, 4)
    ]
    assert not np.array_equal(*model)


@pytest.mark.parametrize(
    "options",
    [
        dict(memory="none"),
        dict(memory="local"),
        dict(memory="global"),
        dict(fusion_steps=0),
        dict(paradigm="local-fusion"),
        dict(paradigm="autoregressive"),
        dict(guidance_scale=3.0),
    ],
)
def test_comparison_paradigms_run(pipeline, shot, options):
    sketches, colors = shot
    out = pipeline(sketches[:40], {0: colors[0]}, "", ColorizeOptions(**(FAST | options)))
    assert out.written.all()


def test_any_frame_size_maps_back(pipeline):
    clip = ToonWorld(ToonConfig(seed=4, frames=20, height=48, width=90)).render_range(0, 20)
    out = pipeline(clip.lineart, {0: clip.color[0]}, "", ColorizeOptions(num_inference_steps=2, guidance_scale=1.0))
    assert out.frames.shape == (20, 48, 90, 3) and out.written.all()


def test_bad_inputs_raise_user_errors(pipeline, shot):
    sketches, colors = shot
    with pytest.raises(UserError, match="outside the shot"):
        pipeline(sketches[:10], {10: colors[0]}, "", ColorizeOptions(**FAST))
    with pytest.raises(UserError, match="line art is"):
        pipeline(sketches[:10], {0: colors[0][:32]}, "", ColorizeOptions(**FAST))
    with pytest.raises(UserError, match="non-empty"):
        pipeline(sketches[:0], {0: colors[0]}, "", ColorizeOptions(**FAST))
    with pytest.raises(UserError, match="fusion-steps"):
        pipeline(sketches[:10], {0: colors[0]}, "", ColorizeOptions(num_inference_steps=2, fusion_steps=5))
    with pytest.raises(UserError, match="--memory"):
        pipeline(sketches[:10], {0: colors[0]}, "", ColorizeOptions(**FAST, memory="all"))


def test_resume_after_stop_is_identical(pipeline, shot, tmp_path):
    sketches, colors = shot
    sketches, colors = sketches[:40], colors[:40]  # three segments: the third resumes
    names = [f"{i:05d}" for i in range(40)]
    options = ColorizeOptions(**FAST, collapse_held_drawings=False)
    full = FrameFolderSink(tmp_path / "full", names)
    pipeline(sketches, {0: colors[0]}, "", options, sink=full, state_dir=tmp_path / "full")
    part = FrameFolderSink(tmp_path / "part", names)
    pipeline(sketches, {0: colors[0]}, "", options, sink=part, state_dir=tmp_path / "part", stop_after_jobs=2)
    assert part.missing()
    pipeline(sketches, {0: colors[0]}, "", options, sink=part, state_dir=tmp_path / "part", resume=True)
    for index in range(40):
        assert part.path(index).read_bytes() == full.path(index).read_bytes(), index
    with pytest.raises(UserError, match="other inputs"):
        pipeline(sketches, {0: colors[39]}, "", options, sink=part, state_dir=tmp_path / "part", resume=True)


@pytest.fixture(scope="module")
def memory_pipeline():
    """A pipeline whose DGLM acts: the preset's zero output projection (eq. 4) made random."""
    model = LongAnimationModel.from_preset("tiny", seed=0)
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for parameter in model.dglm.proj_out.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    return LongAnimationPipeline(model)


def test_every_memory_mode_changes_the_output(memory_pipeline, shot):
    sketches, colors = shot
    outputs = {
        mode: memory_pipeline(sketches[:40], {0: colors[0]}, "", ColorizeOptions(**FAST, memory=mode)).frames
        for mode in ("none", "local", "global", "both")
    }
    for mode, frames in outputs.items():
        assert np.array_equal(frames[:17], outputs["none"][:17]), mode  # first segment: SketchDiT alone
    modes = list(outputs)
    for index, first in enumerate(modes):
        for second in modes[index + 1 :]:
            assert not np.array_equal(outputs[first], outputs[second]), (first, second)


def test_a_run_starts_without_the_local_memory_of_another_run(memory_pipeline, shot, monkeypatch):
    sketches, colors = shot
    seen = []
    original = memory_pipeline._memory_inputs

    def spy(state, job_index, options):
        views = original(state, job_index, options)
        seen.append(None if views is None else views["local_view"].num_tokens)
        return views

    monkeypatch.setattr(memory_pipeline, "_memory_inputs", spy)
    options = ColorizeOptions(**FAST, memory="both", collapse_held_drawings=False)
    # Two segments backward from frame 17, then two forward.
    _, jobs = memory_pipeline.plan(sketches[:45], [17], options.resolved(memory_pipeline.model))
    assert [job.segment.index for job in jobs] == [0, 1, 0, 1]
    memory_pipeline(sketches[:45], {17: colors[17]}, "", options)
    assert len(seen) == len(jobs)
    for job, local_tokens in zip(jobs, seen):
        if job.segment.index == 0:
            assert not local_tokens, job  # the first segment of a run has no latest segment of its own
        else:
            assert local_tokens > 0, job


def test_pipeline_fusion_blends_all_overlap_latents(pipeline, shot, monkeypatch):
    from longanimation.pipeline import fusion as fusion_module

    sketches, colors = shot
    blended = []
    original = fusion_module.fusion_weights
    monkeypatch.setattr(fusion_module, "fusion_weights", lambda count: blended.append(count) or original(count))
    options = ColorizeOptions(**FAST, fusion_steps=2, segment_frames=17, overlap=4, collapse_held_drawings=False)
    pipeline(sketches[:40], {0: colors[0]}, "", options)
    _, jobs = pipeline.plan(sketches[:40], [0], options.resolved(pipeline.model))
    compression = pipeline.backbone.temporal_compression
    # Segments sharing C + 1 frames blend C / compression latents (eq. 6) in each of the 2 late steps;
    # the tail segment is shifted back and shares more.
    expected = [(job.segment.shared_frames - 1) // compression for job in jobs if job.segment.index for _ in range(2)]
    assert expected[0] == 4 // compression and blended == expected


def test_resume_refuses_other_weights_of_the_same_preset(shot, tmp_path):
    sketches, colors = shot
    options = ColorizeOptions(**FAST, collapse_held_drawings=False)
    names = [f"{i:05d}" for i in range(40)]
    first = LongAnimationPipeline(LongAnimationModel.from_preset("tiny", seed=0))
    sink = FrameFolderSink(tmp_path, names)
    first(sketches[:40], {0: colors[0]}, "", options, sink=sink, state_dir=tmp_path, stop_after_jobs=1)
    retrained = LongAnimationPipeline(LongAnimationModel.from_preset("tiny", seed=1))
    with pytest.raises(UserError, match="other inputs, options or model"):
        retrained(sketches[:40], {0: colors[0]}, "", options, sink=sink, state_dir=tmp_path, resume=True)


@pytest.fixture(scope="module")
def cli_case(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    LongAnimationModel.from_preset("tiny", seed=1).save_pretrained(root / "model")
    world = ToonWorld(ToonConfig(seed=8, frames=8, height=64, width=64)).render_range(0, 8)
    (root / "lineart").mkdir()
    for index, sketch in enumerate(world.lineart):
        Image.fromarray(lineart_to_image(sketch)).save(root / "lineart" / f"{index:04d}.png")
    Image.fromarray(world.color[0]).save(root / "key.png")
    return root


def _assert_error_no_output(code, capsys, out):
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err
    assert not out.exists()


def test_cli_bad_inputs(cli_case, tmp_path, capsys):
    """In-process (``main`` is what the console script runs): each case must fail before any work."""
    out = tmp_path / "out"
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(small)
    gray = tmp_path / "gray"
    gray.mkdir()
    Image.fromarray(np.full((64, 64), 128, np.uint8)).save(gray / "0.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    cases = [
        ["colorize", cli_case / "lineart", out, "-k", small, "--model", cli_case / "model"],
        ["colorize", cli_case / "lineart", out, "-k", f"{cli_case / 'key.png'}@8", "--model", cli_case / "model"],
        ["colorize", empty, out, "-k", cli_case / "key.png", "--model", cli_case / "model"],
        ["colorize", gray, out, "-k", cli_case / "key.png", "--model", cli_case / "model"],
        ["colorize", cli_case / "lineart", out, "-k", cli_case / "key.png", "--model", tmp_path / "nomodel"],
        ["colorize", cli_case / "lineart", out, "-k", cli_case / "key.png", "--model", cli_case / "model", "--memory", "all"],
    ]
    for args in cases:
        _assert_error_no_output(main([str(arg) for arg in args]), capsys, out)
    args = ["colorize", cli_case / "lineart", blocker / "out", "-k", cli_case / "key.png", "--model", cli_case / "model"]
    assert main([str(arg) for arg in args]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_reencoding_baseline_runs_and_refuses_resume(pipeline, shot, tmp_path):
    sketches, colors = shot
    options = ColorizeOptions(**FAST, memory_update="reencode", collapse_held_drawings=False)
    out = pipeline(sketches[:40], {0: colors[0]}, "", options)
    assert out.written.all()
    with pytest.raises(UserError, match="streaming"):
        pipeline(sketches[:40], {0: colors[0]}, "", options, state_dir=tmp_path, resume=True)
