"""Colors carried by line-art correspondence at the shot's own size (pipeline/correspondence.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from longanimation.data.lineart import lineart_to_image
from longanimation.errors import UserError
from longanimation.models.longanimation_model import LongAnimationModel
from longanimation.pipeline.correspondence import FlowCarry, camera_motion, pan_explains, shifted
from longanimation.pipeline.long_animation import ColorizeOptions, LongAnimationPipeline

MODEL_COLOR = np.array([255, 0, 255], np.uint8)  # what the stand-in model paints: never a keyframe color


def textured(height: int, width: int, seed: int) -> np.ndarray:
    """A painted-looking background: smooth color gradients plus per-pixel grain."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([60 + 100 * x / width, 90 + 80 * y / height, 120 + 40 * np.sin(x / 17.0)], -1)
    return np.clip(base + rng.integers(-12, 13, (height, width, 3)), 0, 230).astype(np.uint8)


def box_outline(height: int, width: int, top: int, left: int, size: int) -> np.ndarray:
    lines = np.zeros((height, width), bool)
    cv2.rectangle(lines.view(np.uint8), (left, top), (left + size, top + size), 1, 2)
    return lines


def scene(height: int, width: int, box_left: int, *, seed: int = 0, pan: int = 0):
    """Line art and colors of a textured background with fixed marks and a red box at ``box_left``."""
    background = textured(height, width + 64, seed)
    lines = np.zeros((height, width + 64), bool)
    for column in range(10, width + 54, 37):  # painted background strokes: posts of varied height
        lines[20 + column % 23 : height - 20, column : column + 2] = True
    lines, background = lines[:, pan : pan + width], background[:, pan : pan + width].copy()
    box = box_outline(height, width, height // 3, box_left, height // 4)
    filled = np.zeros((height, width), np.uint8)
    cv2.rectangle(filled, (box_left, height // 3), (box_left + height // 4, height // 3 + height // 4), 1, -1)
    lines = (lines & ~filled.astype(bool)) | box
    color = background.copy()
    color[filled.astype(bool)] = (200, 30, 30)
    color[lines] = (20, 20, 20)
    return lines, color


def test_unchanged_area_keeps_the_keyframe_pixels_at_1920x1080():
    height, width = 1080, 1920
    frames = [scene(height, width, left) for left in (1300, 1340, 1380)]
    sketches = np.stack([lines for lines, _ in frames])
    keyframe = frames[0][1]
    pipeline = LongAnimationPipeline(LongAnimationModel.from_preset("tiny", seed=0))
    out = pipeline(sketches, {0: keyframe}, "", ColorizeOptions(num_inference_steps=1, guidance_scale=1.0)).frames
    still = np.s_[:, :1200]  # the left part: line art identical in every frame
    for index in (1, 2):
        assert np.array_equal(out[index][still], keyframe[still]), index
    # The moving box keeps its red inside, carried from the keyframe, not the model's guess.
    inside = out[2][height // 3 + 20 : height // 3 + height // 4 - 20, 1400:1620]
    assert (np.abs(inside.astype(int) - (200, 30, 30)).max(axis=-1) < 2).mean() > 0.95


def test_the_paper_pipeline_stays_available():
    height, width = 96, 160
    frames = [scene(height, width, left) for left in (90, 96)]
    sketches = np.stack([lines for lines, _ in frames])
    pipeline = LongAnimationPipeline(LongAnimationModel.from_preset("tiny", seed=0))
    options = dict(num_inference_steps=1, guidance_scale=1.0)
    carried = pipeline(sketches, {0: frames[0][1]}, "", ColorizeOptions(**options)).frames
    plain = pipeline(sketches, {0: frames[0][1]}, "", ColorizeOptions(**options, correspondence="none")).frames
    assert np.array_equal(carried[1][:, :80], frames[0][1][:, :80])
    assert not np.array_equal(plain[1][:, :80], frames[0][1][:, :80])
    with pytest.raises(UserError, match="--correspondence"):
        ColorizeOptions(correspondence="magic").resolved(pipeline.model)


def run_carry(frames, model_color=MODEL_COLOR):
    carry = FlowCarry()
    carry.begin_run(frames[0][1], frames[0][0])
    outputs = []
    for lines, _ in frames[1:]:
        outputs.append(carry(lines, np.broadcast_to(model_color, (*lines.shape, 3)).copy()))
    return carry, outputs


def test_a_moving_box_carries_its_colors_and_leaves_no_trail():
    height, width = 120, 200
    frames = [scene(height, width, left) for left in (40, 46, 52, 58)]
    _, outputs = run_carry(frames)
    last_lines, last_truth = frames[-1]
    away = ~cv2.dilate(last_lines.view(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    error = np.abs(outputs[-1].astype(int) - last_truth).max(axis=-1)
    assert (error[away] <= 12).mean() > 0.97  # grain aside, every area keeps its color
    vacated = np.zeros((height, width), bool)
    vacated[height // 3 + 4 : height // 3 + height // 4 - 4, 42:56] = True  # the box was here, now background
    red = np.abs(outputs[-1][vacated].astype(int) - (200, 30, 30)).max(axis=-1) < 40
    assert not red.any()  # no red left behind


def test_a_pan_is_followed_in_whole_pixels():
    height, width = 120, 200
    frames = [scene(height, width, 60 - pan, pan=pan) for pan in (0, 3, 6, 9)]
    carry, outputs = run_carry(frames)
    assert np.allclose(carry.camera, (-9, 0), atol=0.6)
    truth = frames[-1][1]
    assert np.array_equal(outputs[-1][:, : width - 12], truth[:, : width - 12])  # shifted copy, to the byte
    # The revealed border continues the background area it opens into, from that area's nearest pixels.
    revealed = outputs[-1][:, -3:]
    assert not (revealed == MODEL_COLOR).all(axis=-1).any()
    assert np.abs(revealed.astype(int) - truth[:, -3:]).max(axis=-1).mean() < 30


def test_new_content_takes_the_model_colors():
    height, width = 120, 200
    lines, color = scene(height, width, 40)
    entering = lines | box_outline(height, width, 10, 150, 30)
    _, outputs = run_carry([(lines, color), (entering, color)])
    assert (outputs[0][15:38, 155:178] == MODEL_COLOR).all()
    assert np.array_equal(outputs[0][:, :120], color[:, :120])


def test_small_new_areas_take_the_model_colors_where_it_works_below_the_input_size():
    """A new area of a few pixels (an eye) is new content like any other: the model's colors, also where
    the model works at a quarter of the input's size (filled from its neighbours instead, a character's
    eye took the background's color and kept it)."""
    height, width = 384, 640  # the tiny model works at 96x160
    lines, color = scene(height, width, 40)
    entering = lines | box_outline(height, width, 10, 500, 5)  # a 4x4 inside
    sketches = np.stack([lines, entering])
    pipeline = LongAnimationPipeline(LongAnimationModel.from_preset("tiny", seed=0))
    options = dict(num_inference_steps=1, guidance_scale=1.0)
    carried = pipeline(sketches, {0: color}, "", ColorizeOptions(**options)).frames
    plain = pipeline(sketches, {0: color}, "", ColorizeOptions(**options, correspondence="none")).frames
    inside = np.s_[12:15, 502:505]
    assert np.array_equal(carried[1][inside], plain[1][inside])
    assert np.array_equal(carried[1][:, :300], color[:, :300])


def test_camera_motion_and_shift():
    lines, _ = scene(120, 200, 60)
    moved = shifted(lines, (4, -2), False)
    assert np.allclose(camera_motion(lines, moved, FlowCarry().config), (4, -2), atol=0.3)
    assert np.array_equal(shifted(moved, (-4, 2), False)[4:-4, 4:-4], lines[4:-4, 4:-4])
    assert camera_motion(lines, np.zeros_like(lines), FlowCarry().config) is None  # nothing in common


def test_state_round_trip_continues_identically():
    frames = [scene(120, 200, left) for left in (40, 46, 52)]
    carry, _ = run_carry(frames[:2])
    state = carry.state_dict()
    arrays = list(state.values())  # saved as safetensors, which refuses tensors sharing memory
    assert not any(np.shares_memory(a, b) for i, a in enumerate(arrays) for b in arrays[i + 1 :])
    again = FlowCarry()
    again.load_state_dict(state)
    model = np.broadcast_to(MODEL_COLOR, (120, 200, 3)).copy()
    assert np.array_equal(carry(frames[2][0], model), again(frames[2][0], model))


def test_a_slow_pan_adds_up_to_whole_pixel_steps():
    """A pan of a quarter pixel per frame (content moves one pixel every fourth frame) is followed, not lost."""
    height, width = 120, 200
    pans = [int(np.floor(0.25 * t)) for t in range(17)]
    frames = [scene(height, width, 60 - pan, pan=pan) for pan in pans]
    carry, outputs = run_carry(frames)
    assert np.allclose(carry.camera, (-pans[-1], 0), atol=0.6)
    truth = frames[-1][1]
    assert np.array_equal(outputs[-1][:, : width - 8], truth[:, : width - 8])


def test_background_a_character_uncovers_is_the_keyframes_again():
    """Background the keyframe showed, hidden for a while, comes back with the keyframe's exact pixels."""
    height, width = 120, 200
    frames = [scene(height, width, left) for left in (110, 80, 50)]  # the box covers 80..110, then leaves it
    _, outputs = run_carry(frames)
    top = height // 3
    uncovered = np.s_[top + 3 : top + height // 4 - 2, 86:105]
    assert np.array_equal(outputs[-1][uncovered], frames[0][1][uncovered])


def test_one_characters_jump_is_not_taken_for_a_pan():
    """Line art of characters only: the largest one jumping explains most lines, but not the others'."""
    height, width = 160, 320
    still = box_outline(height, width, 100, 20, 30) | box_outline(height, width, 100, 260, 30)
    before = still | box_outline(height, width, 30, 100, 90)
    after = still | box_outline(height, width, 30, 122, 90)
    assert not pan_explains(before, after, (22, 0))  # the big box's lines only
    assert pan_explains(before, shifted(before, (5, -3), False), (5, -3))  # a pan moves every object
    assert camera_motion(before, after, FlowCarry().config) is None
    carry = FlowCarry()
    carry.begin_run(np.zeros((height, width, 3), np.uint8), before)
    carry(after, np.zeros((height, width, 3), np.uint8))
    assert np.array_equal(np.rint(carry.camera), (0, 0))


def test_a_character_walking_a_pixel_per_frame_leaves_no_trail():
    """Lines that moved by one pixel are the same lines only against the keyframe (a pan's rounding): a
    character moving a pixel per frame must not stamp its outline into the background it leaves."""
    height, width = 120, 200
    frames = [scene(height, width, left) for left in range(40, 66)]
    _, outputs = run_carry(frames)
    lines, _ = frames[-1]
    top, size = height // 3, height // 4
    vacated = np.zeros((height, width), bool)
    vacated[top - 3 : top + size + 4, 30:62] = True  # where the box walked, background now
    vacated &= ~cv2.dilate(lines.view(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    box_colors = np.array([(200, 30, 30), (20, 20, 20)])
    distance = np.abs(outputs[-1][vacated].astype(int)[:, None] - box_colors).max(axis=-1).min(axis=-1)
    assert (distance > 40).mean() > 0.98


def test_a_sprite_with_a_dotted_outline_leaves_no_ghost():
    """Line art extracted from pixel-art sprites is dotted: areas do not close, so the background a
    sprite leaves is not "the same area" as before; its colors must not stay behind."""
    height, width = 120, 200
    background = np.array([90, 140, 220], np.uint8)

    def sprite_frame(left: int):
        disc = np.zeros((height, width), np.uint8)
        cv2.circle(disc, (left, 60), 20, 1, -1)
        ring = np.zeros((height, width), np.uint8)
        cv2.circle(ring, (left, 60), 20, 1, 1)
        y, x = np.mgrid[0:height, 0:width]
        along = (np.arctan2(y - 60, x - left) + np.pi) * 20  # arc length, px
        lines = ring.astype(bool) & (along % 8 < 2)  # marks of 2 px, gaps of 6 px
        lines[100:102, :] = lines[:, 180:182] = True  # the ground and a post: the camera stands still
        color = np.broadcast_to(background, (height, width, 3)).copy()
        color[disc.astype(bool)] = (230, 160, 40)
        color[lines] = (20, 20, 20)
        return lines, color

    frames = [sprite_frame(left) for left in range(50, 131, 10)]
    _, outputs = run_carry(frames)
    left_behind = outputs[-1][45:76, 35:66]  # inside the first disc, far from the last one
    assert (np.abs(left_behind.astype(int) - background).max(axis=-1) <= 12).mean() > 0.9


def colorized_shot(folder: Path, lefts: tuple[int, ...]) -> tuple[np.ndarray, list]:
    """A shot of the moving box at ``lefts`` written as ``folder``/lineart, /color and /model (the frames of
    ``--correspondence none``); returns ``colorize``'s frames of it and the (line art, color) frames."""
    height, width = 96, 160
    frames = [scene(height, width, left) for left in lefts]
    sketches = np.stack([lines for lines, _ in frames])
    pipeline = LongAnimationPipeline(LongAnimationModel.from_preset("tiny", seed=0))
    options = dict(num_inference_steps=1, guidance_scale=1.0)
    carried = pipeline(sketches, {0: frames[0][1]}, "", ColorizeOptions(**options)).frames
    plain = pipeline(sketches, {0: frames[0][1]}, "", ColorizeOptions(**options, correspondence="none")).frames
    for part, images in (("lineart", [lineart_to_image(s) for s in sketches]), ("color", [c for _, c in frames]),
                         ("model", plain)):
        (folder / part).mkdir()
        for index, image in enumerate(images):
            Image.fromarray(image).save(folder / part / f"{index:05d}.png")
    return carried, frames


def benchmark_script(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_under_test", Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_colorize_is_the_paper_pipelines_frames_carried(tmp_path):
    """The model never sees the carried frames: ``colorize`` is the frames of ``--correspondence none`` carried
    frame by frame, which ``benchmarks/correspondence_replay.py`` relies on to score the correspondence alone."""
    carried, frames = colorized_shot(tmp_path, (60, 66, 72, 72, 66, 80))  # a held drawing, one coming back
    replay = benchmark_script("correspondence_replay")
    scores = replay.replay(tmp_path, tmp_path / "model")
    expected = replay.psnr_per_frame(replay.to_protocol(carried[1:]), replay.to_protocol(np.stack([c for _, c in frames[1:]])))
    assert np.allclose(scores["psnr_per_frame"], expected, atol=1e-3)


def test_toon_replay_makes_the_frames_of_colorize(tmp_path):
    """``benchmarks/toon_replay.py`` scores the frames ``colorize`` writes."""
    carried, _ = colorized_shot(tmp_path, (60, 66, 72, 72, 66, 80))
    benchmark_script("toon_replay").carry_shot(tmp_path, tmp_path / "model", tmp_path / "out")
    replayed = np.stack([np.asarray(Image.open(path)) for path in sorted((tmp_path / "out").iterdir())])
    assert np.array_equal(replayed, carried)
