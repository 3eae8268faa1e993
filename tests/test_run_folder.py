"""The run folder of ``longanimation colorize OUT`` is always resumable or absent.

Whatever stops a run (kill -9, Ctrl-C, disk full, permission lost) and
whenever, ``--resume`` finishes it with frames byte-identical to an
uninterrupted run, and no refused command has written anything. Bad options
are refused before any work. Faults are injected in-process on the Nth call of
a writer (no timing), kill -9 in a subprocess that kills itself.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from longanimation import atomic
from longanimation.cli.app import main
from longanimation.data.lineart import lineart_to_image
from longanimation.data.toon import ToonConfig, ToonWorld
from longanimation.errors import UserError
from longanimation.models.longanimation_model import LongAnimationModel
from longanimation.pipeline import resume as resume_module
from longanimation.pipeline.long_animation import ColorizeOptions
from longanimation.pipeline.resume import STATE_DIR

FRAMES = 24


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """The tiny preset at 32x32 with 9-frame segments (4 jobs for 24 frames): a run takes seconds."""
    root = tmp_path_factory.mktemp("run-folder")
    model = LongAnimationModel.from_preset("tiny", seed=1)
    model.segment = dataclasses.replace(model.segment, height=32, width=32, frames=9, overlap=2)
    model.save_pretrained(root / "model")
    world = ToonWorld(ToonConfig(seed=8, frames=FRAMES, height=48, width=48)).render_range(0, FRAMES)
    (root / "lineart").mkdir()
    for index, sketch in enumerate(world.lineart):
        Image.fromarray(lineart_to_image(sketch)).save(root / "lineart" / f"{index:04d}.png")
    Image.fromarray(world.color[0]).save(root / "key.png")
    return root


def _args(case, out, *extra) -> list[str]:
    return [str(a) for a in ("colorize", case / "lineart", out, "-k", case / "key.png", "--model", case / "model",
                             "--steps", "2", "--guidance-scale", "1", "--no-collapse-held", "--quiet", *extra)]


def _frames(out) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((out / "frames").glob("*.png"))}


@pytest.fixture(scope="module")
def reference(case, tmp_path_factory):
    """Frames of an uninterrupted run."""
    out = tmp_path_factory.mktemp("reference") / "out"
    assert main(_args(case, out)) == 0
    frames = _frames(out)
    assert len(frames) == FRAMES
    return frames


def _assert_finished_like(out, reference) -> None:
    assert _frames(out) == reference
    assert (out / "colorized.mp4").is_file() and not (out / STATE_DIR).exists()
    leftovers = [p for p in out.rglob(".*") if p.name.endswith((".tmp", ".old"))]
    assert not leftovers, leftovers


def _messages(captured) -> list[str]:
    """stderr lines, without the libraries' model-loading progress bars."""
    return [line for line in captured.err.splitlines() if line.strip() and not re.search(r"\d+/\d+ \[", line)]


def _one_error(capsys, *words) -> str:
    lines = _messages(capsys.readouterr())
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def _on_call(original, number, action):
    """``original`` wrapped: its call ``number`` (1-based) runs ``action()`` instead."""
    calls = 0

    def wrapper(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == number:
            return action()
        return original(*args, **kwargs)

    return wrapper


def _raise(error):
    def action(*args, **kwargs):
        raise error

    return action


class Killed(BaseException):
    """Stands for kill -9 in-process: nothing of ours catches it, only ``finally`` blocks run."""


# ---------------------------------------------------------------- kill -9


KILL_AT_FRAME = """
import os, signal, sys
from longanimation.pipeline import output
write, count = output.FrameFolderSink.write, 0
def killing_write(self, index, frame):
    global count
    count += 1
    if count == {number}:
        os.kill(os.getpid(), signal.SIGKILL)
    write(self, index, frame)
output.FrameFolderSink.write = killing_write
from longanimation.cli.app import main
main(sys.argv[1:])
"""


def test_kill_in_the_first_segment_resumes(case, reference, tmp_path, capsys):
    out = tmp_path / "out"
    script = KILL_AT_FRAME.format(number=4)  # the first segment writes 8 frames
    command = [sys.executable, "-c", script, *_args(case, out)]
    process = subprocess.run(command, capture_output=True, timeout=600, check=False)
    assert process.returncode == -9, process.stderr.decode()
    assert 0 < len(_frames(out)) < 8 and (out / "segments.json").is_file()
    assert main(_args(case, out, "--resume")) == 0, capsys.readouterr().err
    _assert_finished_like(out, reference)


@pytest.mark.parametrize("number", [3, 4])
def test_kill_while_the_state_is_replaced_resumes(case, reference, tmp_path, monkeypatch, capsys, number):
    """A kill between any two renames of a state save leaves a complete state (old or new)."""
    out = tmp_path / "out"
    calls = 0
    replace = os.replace

    def killing_replace(source, target):
        nonlocal calls
        if STATE_DIR in str(target):
            calls += 1
            if calls == number:
                raise Killed
        replace(source, target)

    monkeypatch.setattr(atomic.os, "replace", killing_replace)
    with pytest.raises(Killed):
        main(_args(case, out))
    monkeypatch.setattr(atomic.os, "replace", replace)
    assert main(_args(case, out, "--resume")) == 0, capsys.readouterr().err
    _assert_finished_like(out, reference)


# ---------------------------------------------------------------- refused commands write nothing


def test_resume_into_a_missing_folder_is_refused_and_creates_nothing(case, tmp_path, capsys):
    out = tmp_path / "missing" / "out"
    assert main(_args(case, out, "--resume")) == 2
    _one_error(capsys, "nothing to resume", str(out))
    assert not out.exists() and not out.parent.exists()


def test_refused_resume_leaves_the_folder_as_it_was(case, reference, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    monkeypatch.setattr(Image.Image, "save", _on_call(Image.Image.save, 12, _raise(Killed())))
    with pytest.raises(Killed):
        main(_args(case, out))
    monkeypatch.undo()
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    for extra in (["--segment-frames", "5", "--overlap", "1"], ["--seed", "1"], ["--prompt", "other"]):
        assert main(_args(case, out, "--resume", *extra)) == 2
        _one_error(capsys, "other inputs")
        assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before, extra
    assert main(_args(case, out)) == 2  # a plain run does not overwrite an unfinished one
    _one_error(capsys, "not empty", "--resume")
    assert main(_args(case, out, "--resume")) == 0
    _assert_finished_like(out, reference)
    assert main(_args(case, out, "--resume")) == 2
    _one_error(capsys, "nothing to resume", "complete")


def test_leftovers_of_atomic_writes_do_not_block_a_new_run(case, reference, tmp_path):
    out = tmp_path / "out"
    (out / f".{STATE_DIR}.x1y2.tmp").mkdir(parents=True)
    (out / ".segments.json.x1y2.tmp").write_text("{")
    assert main(_args(case, out)) == 0
    _assert_finished_like(out, reference)


# ---------------------------------------------------------------- options


BAD_OPTIONS = [
    (["--fps", "-1"], "--fps"),
    (["--fps", "0"], "--fps"),
    (["--fps", "nan"], "--fps"),
    (["--fps", "inf"], "--fps"),
    (["--guidance-scale", "inf"], "--guidance-scale"),
    (["--guidance-scale", "nan"], "--guidance-scale"),
    (["--guidance-scale", "-1"], "--guidance-scale"),
    (["--steps", "0"], "--steps"),
    (["--steps", "-1"], "--steps"),
    (["--steps", "5000"], "--steps"),
    (["--segment-frames", "0"], "--segment-frames"),
    (["--segment-frames", "-3"], "--segment-frames"),
    (["--overlap", "-1"], "--overlap"),
    (["--overlap", "8"], "overlap"),
    (["--seed", str(2**62)], "--seed"),
]


def test_bad_options_are_refused_before_any_work(case, tmp_path, monkeypatch, capsys):
    from longanimation.pipeline.long_animation import LongAnimationPipeline

    monkeypatch.setattr(LongAnimationPipeline, "__call__", _raise(AssertionError("colorization started")))
    out = tmp_path / "out"
    for extra, word in BAD_OPTIONS:
        assert main(_args(case, out, *extra)) == 2, extra
        _one_error(capsys, word)
        assert not out.exists(), extra


@pytest.mark.parametrize(
    "options, word",
    [
        (dict(num_inference_steps=0), "--steps"),
        (dict(guidance_scale=float("nan")), "--guidance-scale"),
        (dict(guidance_scale=float("inf")), "--guidance-scale"),
        (dict(segment_frames=0), "--segment-frames"),
        (dict(overlap=-4), "--overlap"),
        (dict(seed=1.5), "--seed"),
        (dict(seed=-(2**60)), "--seed"),
        (dict(height=-32), "height"),
    ],
)
def test_python_api_checks_the_numbers(options, word):
    model = LongAnimationModel.from_preset("tiny", seed=0)
    with pytest.raises(UserError, match=re.escape(word)):
        ColorizeOptions(**options).resolved(model)


def test_good_edge_options_still_resolve():
    model = LongAnimationModel.from_preset("tiny", seed=0)
    resolved = ColorizeOptions(num_inference_steps=1, guidance_scale=0, seed=-3, overlap=0).resolved(model)
    assert resolved.num_inference_steps == 1 and resolved.guidance_scale == 0 and resolved.fusion_steps == 0
    assert ColorizeOptions(seed=np.int64(7)).resolved(model).seed == 7


# ---------------------------------------------------------------- Ctrl-C


def test_ctrl_c_says_how_to_continue_and_exits_130(case, reference, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    monkeypatch.setattr(Image.Image, "save", _on_call(Image.Image.save, 3, _raise(KeyboardInterrupt())))
    assert main(_args(case, out)) == 130
    monkeypatch.undo()
    lines = _messages(capsys.readouterr())
    assert len(lines) == 1 and lines[0].startswith("interrupted") and "--resume" in lines[0] and str(out) in lines[0]
    assert main(_args(case, out, "--resume")) == 0
    _assert_finished_like(out, reference)


def test_ctrl_c_before_the_run_folder_exists(case, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    monkeypatch.setattr(LongAnimationModel, "from_pretrained", _raise(KeyboardInterrupt()))
    assert main(_args(case, out)) == 130
    assert _messages(capsys.readouterr()) == ["interrupted"]
    assert not out.exists()


# ---------------------------------------------------------------- disk full, permission lost


def _no_space():
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize(
    "target, number, error, where",
    [
        ("frame", 11, _no_space, "frames/0010.png"),
        ("frame", 2, lambda: PermissionError(errno.EACCES, os.strerror(errno.EACCES)), "frames/0001.png"),
        ("state", 3, _no_space, "state-2.safetensors"),
    ],
)
def test_os_errors_are_one_line_and_the_run_resumes(
    case, reference, tmp_path, monkeypatch, capsys, target, number, error, where
):
    out = tmp_path / "out"
    if target == "frame":
        monkeypatch.setattr(Image.Image, "save", _on_call(Image.Image.save, number, _raise(error())))
    else:
        monkeypatch.setattr(resume_module, "save_file", _on_call(resume_module.save_file, number, _raise(error())))
    assert main(_args(case, out)) == 2
    monkeypatch.undo()
    _one_error(capsys, str(out / where) if target == "frame" else where, error().strerror, "--resume")
    assert main(_args(case, out, "--resume")) == 0
    _assert_finished_like(out, reference)


def test_disk_full_while_writing_the_video_resumes(case, reference, tmp_path, monkeypatch, capsys):
    from longanimation.data.video_io import VideoWriter

    out = tmp_path / "out"
    monkeypatch.setattr(VideoWriter, "write", _on_call(VideoWriter.write, 5, _raise(_no_space())))
    assert main(_args(case, out)) == 2
    monkeypatch.undo()
    _one_error(capsys, "colorized.mp4", "--resume")
    assert not (out / "colorized.mp4").exists() and (out / STATE_DIR).is_dir()
    assert main(_args(case, out, "--resume")) == 0
    _assert_finished_like(out, reference)


def test_disk_full_before_the_first_state_leaves_nothing(case, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    monkeypatch.setattr(resume_module, "save_file", _raise(_no_space()))
    assert main(_args(case, out)) == 2
    _one_error(capsys, str(out))
    assert not out.exists()
