"""Frame and video I/O: formats, natural order, atomic writes and bad input."""

from __future__ import annotations

import av
import numpy as np
import pytest
from PIL import Image

from longanimation.data.video_io import (
    VideoWriter,
    natural_key,
    read_image,
    read_shot,
    write_png_folder,
    write_video,
)
from longanimation.errors import UserError


def _frames(count=6, height=48, width=64, seed=0):
    rng = np.random.default_rng(seed)
    # Flat blocks so lossy codecs keep colors close.
    small = rng.integers(0, 256, size=(count, height // 16, width // 16, 3), dtype=np.uint8)
    return small.repeat(16, axis=1).repeat(16, axis=2)


def test_natural_sort_order(tmp_path):
    frames = _frames(12)
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / f"f{index}.png")
    shot = read_shot(tmp_path)
    assert shot.names == [f"f{index}" for index in range(12)]
    assert np.array_equal(shot.frames, frames)
    assert sorted(["a10", "a2", "a1"], key=natural_key) == ["a1", "a2", "a10"]


@pytest.mark.parametrize("suffix", [".jpg", ".webp", ".png"])
def test_read_image_formats(tmp_path, suffix):
    frame = _frames(1)[0]
    Image.fromarray(frame).save(tmp_path / f"one{suffix}", quality=95)
    shot = read_shot(tmp_path / f"one{suffix}")
    assert shot.frames.shape == (1, 48, 64, 3)
    assert np.abs(shot.frames[0].astype(int) - frame).mean() < 8


def test_rgba_modes(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200  # red hidden under full transparency
    rgba[2:4, 2:4] = (0, 0, 0, 255)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    assert np.array_equal(read_image(tmp_path / "a.png", "RGBA"), rgba)
    rgb = read_image(tmp_path / "a.png", "RGB")
    assert (rgb[0, 0] == 255).all() and (rgb[2, 2] == 0).all()
    assert read_image(tmp_path / "a.png", "L").shape == (8, 8)


def test_mp4_round_trip_is_h264_yuv420p_at_shot_fps(tmp_path):
    frames = _frames(10)
    write_video(tmp_path / "clip.mp4", frames, fps=12)
    with av.open(str(tmp_path / "clip.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert float(stream.average_rate) == 12
    shot = read_shot(tmp_path / "clip.mp4")
    assert shot.num_frames == 10 and shot.fps == 12
    assert np.abs(shot.frames.astype(int) - frames).mean() < 6


def test_video_encoder_holds_a_bounded_number_of_frames(tmp_path):
    """x264 keeps its lookahead in memory (41 frames by default, 1.4 GB at 4K): the writer bounds it.

    Below 10 frames, so that the peak memory of a run is the same for a 10-frame shot as for a long one.
    """
    from longanimation.data.video_io import ENCODER_LOOKAHEAD

    frames = _frames(48, seed=3)
    held = []
    with VideoWriter(tmp_path / "long.mp4", fps=24) as writer:
        for frame in frames:
            writer.write(frame)
            held.append(writer.frames_in_encoder)
    assert max(held) <= ENCODER_LOOKAHEAD + 1 < 10
    assert held[-1] == max(held)  # a steady state, not a shot-long buffer
    assert read_shot(tmp_path / "long.mp4").num_frames == len(frames)


def test_odd_size_video_is_padded_to_even(tmp_path):
    frames = _frames(3, 48, 64)[:, :47, :63]
    write_video(tmp_path / "odd.mp4", frames, fps=24)
    assert read_shot(tmp_path / "odd.mp4").frames.shape[1:3] == (48, 64)


def test_gif_input(tmp_path):
    frames = _frames(4)
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(tmp_path / "a.gif", save_all=True, append_images=images[1:], duration=100, loop=0)
    shot = read_shot(tmp_path / "a.gif")
    assert shot.num_frames == 4 and shot.frames.shape[1:] == (48, 64, 3)


def test_interrupted_video_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(target, fps=24) as writer:
            writer.write(_frames(1)[0])
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_interrupted_png_folder_write_keeps_old_output(tmp_path, monkeypatch):
    target = tmp_path / "frames"
    write_png_folder(target, _frames(2))
    before = sorted(p.name for p in target.iterdir())

    class Boom:
        def __len__(self):
            return 2

        def __iter__(self):
            yield _frames(1)[0]
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        write_png_folder(target, Boom(), names=["a", "b"])
    assert sorted(p.name for p in target.iterdir()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["frames"]


def test_mixed_sizes_rejected(tmp_path):
    Image.fromarray(_frames(1)[0]).save(tmp_path / "1.png")
    Image.fromarray(_frames(1, 32, 32)[0]).save(tmp_path / "2.png")
    with pytest.raises(UserError, match="differ in size"):
        read_shot(tmp_path)


def _assert_one_line_error(result, output_path=None):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    if output_path is not None:
        assert not output_path.exists()
        leftovers = [p.name for p in output_path.parent.iterdir() if p.name.startswith(f".{output_path.name}")]
        assert leftovers == []


def _bad_inputs(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    text = tmp_path / "text"
    text.mkdir()
    (text / "0001.png").write_text("this is not an image\n")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.fromarray(_frames(1)[0]).save(mixed / "1.png")
    Image.fromarray(_frames(1, 32, 32)[0]).save(mixed / "2.png")
    corrupt = tmp_path / "corrupt.mp4"
    write_video(corrupt, _frames(4), fps=24)
    corrupt.write_bytes(corrupt.read_bytes()[:200])
    truncated_png = tmp_path / "trunc"
    truncated_png.mkdir()
    Image.fromarray(_frames(1)[0]).save(truncated_png / "1.png")
    (truncated_png / "1.png").write_bytes((truncated_png / "1.png").read_bytes()[:60])
    return {
        "missing": tmp_path / "nope",
        "empty": empty,
        "text-as-png": text,
        "mixed": mixed,
        "corrupt-video": corrupt,
        "truncated-png": truncated_png,
    }


@pytest.mark.parametrize("case", ["missing", "empty", "text-as-png", "mixed", "corrupt-video", "truncated-png"])
def test_cli_bad_input_one_line_exit_2(tmp_path, run_cli, case):
    source = _bad_inputs(tmp_path)[case]
    out = tmp_path / "out.mp4"
    _assert_one_line_error(run_cli("convert", source, out), out)


def test_cli_convert_round_trip(tmp_path, run_cli):
    write_png_folder(tmp_path / "in", _frames(5))
    result = run_cli("convert", tmp_path / "in", tmp_path / "v.mp4", "--fps", "8")
    assert result.returncode == 0, result.stderr
    result = run_cli("convert", tmp_path / "v.mp4", tmp_path / "back")
    assert result.returncode == 0, result.stderr
    shot = read_shot(tmp_path / "back")
    assert shot.num_frames == 5
    probe = run_cli("probe", tmp_path / "v.mp4")
    assert "5 frames, 64x48, 8 fps" in probe.stdout


def test_cli_unwritable_output(tmp_path, run_cli):
    write_png_folder(tmp_path / "in", _frames(2))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _assert_one_line_error(run_cli("convert", tmp_path / "in", blocker / "sub" / "v.mp4"))
