"""Flat colors from the line art: regions, medians, palette snapping, tracked regions, the color layer, pipeline and CLI."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from longanimation.cli.app import main
from longanimation.data.lineart import lineart_to_image
from longanimation.data.toon import ToonConfig, ToonWorld
from longanimation.errors import UserError
from longanimation.models.longanimation_model import LongAnimationModel
from longanimation.pipeline.flat_colors import (
    LineColors,
    TrackedRegions,
    closed_regions,
    continued_regions,
    flatten_frame,
    flatten_shot,
    keyframe_palette,
    line_sides,
    region_medians,
    remove_lines,
    snap_to_palette,
)
from longanimation.pipeline.long_animation import ColorizeOptions, LongAnimationPipeline
from longanimation.pipeline.output import FrameFolderSink


def two_boxes() -> np.ndarray:
    """20x20 line art: a frame border and a vertical line at x = 9 -> two closed areas."""
    lines = np.zeros((20, 20), bool)
    lines[0, :] = lines[-1, :] = lines[:, 0] = lines[:, -1] = True
    lines[:, 9] = True
    return lines


def test_regions_are_four_connected():
    lines = two_boxes()
    labels, count = closed_regions(lines)
    assert count == 3 and (labels[lines] == 0).all()
    assert labels[5, 4] != labels[5, 14]
    # A diagonal one-pixel gap does not join two areas (4-connectivity).
    diagonal = np.eye(8, dtype=bool) | np.eye(8, k=1, dtype=bool)
    diagonal[3, 4] = False
    diagonal[4, 4] = True
    assert closed_regions(diagonal)[1] == 3


def test_region_medians_match_numpy():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (31, 17, 3), dtype=np.uint8)
    labels = rng.integers(0, 6, (31, 17)).astype(np.int32)
    medians = region_medians(frame, labels, 7)  # label 6 is empty
    for label in range(6):
        values = np.sort(frame[labels == label], axis=0)
        assert (medians[label] == values[(len(values) - 1) // 2]).all()
    assert (medians[6] == 0).all()


def test_flatten_takes_each_area_median_and_keeps_lines():
    lines = two_boxes()
    frame = np.zeros((20, 20, 3), np.uint8)
    frame[:, :9] = (200, 40, 40)
    frame[:, 10:] = (30, 60, 220)
    frame[lines] = (5, 5, 5)
    noisy = frame.copy()
    noisy[3, 3] = (255, 255, 255)  # a speck inside the left area
    noisy[5:15, 8] = (30, 60, 220)  # the right color bleeding across the line
    noisy[2, 15] = (90, 90, 90)
    flat = flatten_frame(noisy, lines)
    assert (flat == frame).all()
    assert (flatten_frame(frame, lines) == frame).all()  # flat input stays as it is
    with pytest.raises(UserError, match="line art"):
        flatten_frame(frame, lines[:10])


def test_palette_snaps_only_within_tolerance():
    palette = np.array([[200, 40, 40], [30, 60, 220]], np.uint8)
    colors = np.array([[190, 45, 40], [100, 200, 100], [30, 60, 200]], np.uint8)
    snapped = snap_to_palette(colors, palette, tolerance=25)
    assert snapped.tolist() == [[200, 40, 40], [100, 200, 100], [30, 60, 220]]
    assert (snap_to_palette(colors, palette, tolerance=0) == colors).all()
    lines = two_boxes()
    key = np.zeros((20, 20, 3), np.uint8)
    key[:, :9], key[:, 10:] = palette[0], palette[1]
    assert sorted(keyframe_palette([(key, lines)]).tolist()) == sorted(palette.tolist())
    with pytest.raises(UserError, match="no region"):
        keyframe_palette([(key, np.ones((20, 20), bool))])


def box_at(left: int, top: int = 6, size: int = 8, split: bool = False) -> np.ndarray:
    """32x32 line art: a border and a box outline at (left, top); ``split`` adds a line cutting the box in two."""
    lines = np.zeros((32, 32), bool)
    lines[0, :] = lines[-1, :] = lines[:, 0] = lines[:, -1] = True
    lines[top, left : left + size] = lines[top + size - 1, left : left + size] = True
    lines[top : top + size, left] = lines[top : top + size, left + size - 1] = True
    if split:
        lines[top : top + size, left + 2] = True
    return lines


def label_at(lines: np.ndarray, y: int, x: int) -> int:
    return int(closed_regions(lines)[0][y, x])


def test_continued_regions_follow_moves_splits_and_new_areas():
    first, moved = box_at(4), box_at(7)
    labels, count = closed_regions(moved)
    source = continued_regions(labels, count, *closed_regions(first))
    assert source[0] == -1  # lines continue nothing
    assert source[label_at(moved, 9, 9)] == label_at(first, 9, 6)  # the box moved 3 px right
    assert source[label_at(moved, 2, 2)] == label_at(first, 2, 2)  # the background around it
    # The box split by a new line: its larger part continues it, the sliver does not.
    split = box_at(4, split=True)
    labels, count = closed_regions(split)
    source = continued_regions(labels, count, *closed_regions(first))
    assert source[label_at(split, 9, 8)] == label_at(first, 9, 8) and source[label_at(split, 9, 5)] == -1
    # A box that appears where there was background is not the background's continuation.
    empty = box_at(4)
    empty[1:-1, 1:-1] = False  # the border alone
    labels, count = closed_regions(first)
    source = continued_regions(labels, count, *closed_regions(empty))
    assert source[label_at(first, 9, 6)] == -1 and source[label_at(first, 2, 2)] == label_at(empty, 2, 2)
    with pytest.raises(UserError, match="size"):
        continued_regions(labels, count, *closed_regions(empty[:20]))
    # A frame that is all lines (no region) continues nothing and is continued by nothing.
    solid = np.ones((32, 32), bool)
    assert continued_regions(*closed_regions(solid), labels, count).tolist() == [-1]
    assert (continued_regions(labels, count, *closed_regions(solid)) == -1).all()


def paint(lines: np.ndarray, left: int, inside, outside, line=(0, 0, 0)) -> np.ndarray:
    """Box ``box_at(left)``'s inside, the background and the lines in three colors."""
    labels, _ = closed_regions(lines)
    frame = np.empty((*lines.shape, 3), np.uint8)
    frame[:] = outside
    frame[labels == labels[9, left + 3]] = inside
    frame[lines] = line
    return frame


def test_tracked_regions_keep_keyframe_colors_and_average_new_ones():
    red, blue = (200, 30, 30), (30, 60, 220)
    keyframe = paint(box_at(4), 4, red, blue)
    regions = TrackedRegions.from_keyframe(keyframe, box_at(4))
    for left, model_box, model_background in ((6, (150, 80, 80), (60, 60, 200)), (8, (90, 90, 90), (90, 90, 90))):
        lines = box_at(left)
        model = paint(lines, left, model_box, model_background, line=(10, 20, 30))
        regions = regions.follow(model, lines)
        # However the model drifts, the areas followed from the keyframe keep its colors, and the lines its lines'.
        assert (regions.paint() == paint(lines, left, red, blue)).all()
        assert (flatten_frame(model, lines) == model).all()  # per frame, the drift would stay
    # The sliver a new line cuts off is new: the model's color, averaged over its track by pixels.
    split = box_at(8, split=True)
    labels, _ = closed_regions(split)
    sliver = labels == label_at(split, 9, 9)
    model = paint(box_at(8), 8, (90, 90, 90), blue)
    model[sliver] = (100, 0, 0)
    regions = regions.follow(model, split)
    assert (regions.paint()[sliver] == (100, 0, 0)).all()
    model[sliver] = (0, 0, 100)
    regions = regions.follow(model, split)
    assert (regions.paint()[sliver] == (50, 0, 50)).all()  # equal sizes: the mean of both frames
    restored = TrackedRegions.from_state_dict(regions.state_dict())
    assert (restored.follow(model, split).paint() == regions.follow(model, split).paint()).all()


def test_line_sides_name_the_two_areas_a_stroke_separates():
    lines = two_boxes()
    labels, _ = closed_regions(lines)
    near, far = line_sides(labels)
    left, right = labels[5, 4], labels[5, 14]
    assert (near[~lines] == 0).all() and (far[~lines] == 0).all()
    assert {near[5, 9], far[5, 9]} == {left, right}  # the stroke between the two areas
    assert near[0, 4] == left and far[0, 4] == 0  # the border: one area within two pixels
    assert all((side == 0).all() for side in line_sides(np.zeros((4, 4), np.int32)))  # no line at all


def test_lines_take_the_keyframe_line_colors_of_their_areas():
    """Lines inked per character: the box's outline is green in the keyframe, the frame border black."""
    green, red, blue = (0, 200, 0), (200, 30, 30), (30, 60, 220)
    keyframe = paint(box_at(4), 4, red, blue)
    outline = box_at(4) & ~box_at(4, size=0)
    keyframe[outline] = green
    regions = TrackedRegions.from_keyframe(keyframe, box_at(4))
    moved = box_at(6)
    model = paint(moved, 6, (90, 90, 90), (90, 90, 90), line=(10, 20, 30))
    out = regions.follow(model, moved).paint()
    box_outline = moved & ~box_at(6, size=0)
    assert (out[box_outline] == green).all() and (out[moved & ~box_outline] == (0, 0, 0)).all()
    # Lookup order: the pair's lines, else the lines nearest the near side, else all the keyframe's lines.
    lines = regions.lines
    box, background = label_at(box_at(4), 9, 6), label_at(box_at(4), 2, 2)
    near, far = np.array([-1, box, background, box]), np.array([-1, background, -1, -1])
    assert lines.lookup(near, far).tolist() == [[0, 0, 0], list(green), [0, 0, 0], list(green)]
    assert lines.ink.tolist() == [0, 0, 0]  # the border's black is most of the keyframe's lines
    empty = LineColors.from_keyframe(keyframe, *closed_regions(np.zeros((32, 32), bool)))
    assert empty.lookup(np.array([-1, 1]), np.array([-1, 0])).tolist() == [[0, 0, 0]] * 2  # no lines: black


def test_color_layer_fills_lines_with_the_nearest_color():
    lines = two_boxes()
    frame = np.zeros((20, 20, 3), np.uint8)
    frame[:, :9] = (200, 40, 40)
    frame[:, 10:] = (30, 60, 220)
    layer = remove_lines(frame, lines)
    assert (layer[~lines] == frame[~lines]).all()
    colors = {tuple(c) for c in layer.reshape(-1, 3)}
    assert colors == {(200, 40, 40), (30, 60, 220)}
    assert tuple(layer[0, 0]) == (200, 40, 40) and tuple(layer[19, 19]) == (30, 60, 220)
    assert (remove_lines(frame, np.zeros((20, 20), bool)) == frame).all()


@pytest.fixture(scope="module")
def toon():
    clip = ToonWorld(ToonConfig(seed=33, frames=24, height=64, width=64)).render_range(0, 24)
    return clip.lineart, clip.color


def test_pipeline_flat_output_is_the_flattened_raw_output(toon):
    sketches, colors = (array[:10] for array in toon)
    pipeline = LongAnimationPipeline(LongAnimationModel.from_preset("tiny", seed=0))
    base = dict(num_inference_steps=2, guidance_scale=1.0, collapse_held_drawings=False, height=64, width=64)
    raw = pipeline(sketches, {0: colors[0]}, "", ColorizeOptions(**base)).frames
    flat = pipeline(sketches, {0: colors[0]}, "", ColorizeOptions(**base, flat_colors=True)).frames
    assert (flat[0] == colors[0]).all()  # the keyframe is the user's, untouched
    for index in range(1, len(sketches)):
        assert (flat[index] == flatten_frame(raw[index], sketches[index])).all()
    palette = keyframe_palette([(colors[0], sketches[0])])
    snapped = pipeline(sketches, {0: colors[0]}, "", ColorizeOptions(**base, flat_colors=True, palette_tolerance=500)).frames
    areas = ~sketches[1:]
    assert {tuple(c) for c in snapped[1:][areas]} <= {tuple(c) for c in palette}
    with pytest.raises(UserError, match="--flat"):
        pipeline(sketches, {0: colors[0]}, "", ColorizeOptions(**base, palette_tolerance=10))


def test_pipeline_tracked_flat_output_is_flatten_shot_of_the_raw_output(toon, tmp_path):
    """Keyframes at both ends (a forward and a backward run), held drawings, and resume mid-run.

    Tracked regions are the correspondence: new ones take the model's own colors, so the tracked
    output is the same with and without the pixel correspondence, and it is ``flatten_shot`` of the
    model's frames (the ``--correspondence none`` output)."""
    sketches, colors = toon
    sketches, colors = np.concatenate([sketches[:3], sketches[2:]]), np.concatenate([colors[:3], colors[2:]])
    pipeline = LongAnimationPipeline(LongAnimationModel.from_preset("tiny", seed=0))
    keyframes = {0: colors[0], len(sketches) - 1: colors[-1]}
    base = dict(num_inference_steps=2, guidance_scale=1.0, segment_frames=9, overlap=4, height=64, width=64)
    raw = pipeline(sketches, keyframes, "", ColorizeOptions(**base)).frames
    model = pipeline(sketches, keyframes, "", ColorizeOptions(**base, correspondence="none")).frames
    assert not (raw == model).all()  # the correspondence acts on this shot
    options = ColorizeOptions(**base, flat_colors=True, track_regions=True)
    tracked = pipeline(sketches, keyframes, "", options).frames
    assert (tracked == pipeline(sketches, keyframes, "", replace(options, correspondence="none")).frames).all()
    assert (tracked == flatten_shot(model, sketches, keyframes, track=True)).all()
    assert not (tracked == flatten_shot(raw, sketches, keyframes, track=True)).all()  # not the carried frames
    untracked = pipeline(sketches, keyframes, "", replace(options, track_regions=False)).frames
    assert (flatten_shot(raw, sketches, keyframes) == untracked).all()
    assert not (tracked == flatten_shot(raw, sketches, keyframes)).all()
    names = [f"{i:03d}" for i in range(len(sketches))]
    part = FrameFolderSink(tmp_path / "part", names)
    pipeline(sketches, keyframes, "", options, sink=part, state_dir=tmp_path / "part", stop_after_jobs=2)
    pipeline(sketches, keyframes, "", options, sink=part, state_dir=tmp_path / "part", resume=True)
    for index in range(len(sketches)):
        assert (np.asarray(Image.open(part.path(index))) == tracked[index]).all(), index
    with pytest.raises(UserError, match="--track-regions needs --flat"):
        pipeline(sketches, keyframes, "", ColorizeOptions(**base, track_regions=True))


def test_cli_flat_and_color_layer(tmp_path, toon, capsys):
    """In-process (``main`` is what the console script runs), the model at the shot's 64x64."""
    sketches, colors = toon
    model = LongAnimationModel.from_preset("tiny", seed=1)
    model.segment = replace(model.segment, height=64, width=64)
    model.save_pretrained(tmp_path / "model")
    (tmp_path / "lineart").mkdir()
    for index, sketch in enumerate(sketches):
        Image.fromarray(lineart_to_image(sketch)).save(tmp_path / "lineart" / f"{index:03d}.png")
    Image.fromarray(colors[0]).save(tmp_path / "key.png")

    def colorize(out, *extra) -> tuple[int, str]:
        args = ["colorize", tmp_path / "lineart", out, "-k", tmp_path / "key.png", "--model", tmp_path / "model",
                "--steps", "2", "--quiet", *extra]
        code = main([str(arg) for arg in args])
        return code, capsys.readouterr().err.strip()

    out = tmp_path / "out"
    code, err = colorize(out, "--flat", "--palette-tolerance", "40", "--track-regions", "--color-layer")
    assert code == 0, err
    names = sorted(p.name for p in (out / "frames").iterdir())
    assert names == sorted(p.name for p in (out / "color_layer").iterdir()) and len(names) == len(sketches)
    for name, sketch in zip(names, sketches, strict=True):
        frame = np.array(Image.open(out / "frames" / name))
        layer = np.array(Image.open(out / "color_layer" / name))
        assert (layer == remove_lines(frame, sketch)).all()
    bad = tmp_path / "bad"
    for option in ("--palette-tolerance=40", "--track-regions"):
        code, err = colorize(bad, option)
        assert code == 2 and err.startswith("error:") and "--flat" in err
        assert len(err.splitlines()) == 1 and not bad.exists()
