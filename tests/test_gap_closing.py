"""Gap closing: strokes that stop short get bridged, closed drawings and flat areas stay as they are."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from longanimation.data.gap_closing import GapClosingConfig, close_gaps, trapped_ball_regions
from longanimation.data.lineart_extraction import line_endpoints, thin_lines
from longanimation.errors import UserError
from longanimation.pipeline.flat_colors import closed_regions


def area_count(lines: np.ndarray) -> int:
    """Number of areas the paint bucket of ``--flat`` sees (4-connected, lines excluded)."""
    return closed_regions(lines)[1] - 1


def boxes_with_gaps(gaps: list[int], thickness: int, size: int = 40) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """A row of square outlines, each with one gap of the given width in its left side.

    Returns the line mask and the (row, column) centre of each gap.
    """
    margin = 10
    lines = np.zeros((size + 2 * margin, margin + len(gaps) * (size + margin)), np.uint8)
    centres = []
    for index, gap in enumerate(gaps):
        left = margin + index * (size + margin)
        cv2.rectangle(lines, (left, margin), (left + size, margin + size), 1, thickness, cv2.LINE_8)
        if gap:
            top = margin + size // 2 - gap // 2
            lines[top : top + gap, left - thickness : left + thickness + 1] = 0
            centres.append((top + gap // 2, left))
    return lines > 0, centres


@pytest.mark.parametrize("thickness", [1, 3])
def test_gaps_up_to_max_gap_are_closed_wider_ones_not(thickness):
    gaps = [1, 2, 3, 4, 5, 6]
    lines, centres = boxes_with_gaps(gaps, thickness)
    assert area_count(lines) == 1  # every box leaks into the ground
    closed = close_gaps(lines)
    assert area_count(closed) == 1 + len(gaps)
    added = closed & ~lines
    # the bridges sit in the gaps: nothing is drawn farther than the gap's half width from its centre
    near_gap = np.zeros_like(lines)
    for (row, col), gap in zip(centres, gaps, strict=True):
        near_gap[row - gap // 2 - 2 : row + gap // 2 + 3, col - thickness - 2 : col + thickness + 3] = True
    assert added.any() and not (added & ~near_gap).any()

    wide, _ = boxes_with_gaps([12], thickness)
    assert area_count(close_gaps(wide)) == 1  # twice the default max_gap: left open
    assert area_count(close_gaps(wide, GapClosingConfig(max_gap=14))) == 2


def test_stroke_stopping_short_of_another_is_joined():
    """A T-gap: a stroke across a box ends 4 px before the far side; the two halves become areas."""
    lines = np.zeros((60, 90), np.uint8)
    cv2.rectangle(lines, (5, 5), (84, 54), 1, 1)
    cv2.line(lines, (45, 5), (45, 50), 1, 1)  # stops 4 px above the bottom side at row 54
    lines = lines > 0
    assert area_count(lines) == 2  # the box's inside is one area, plus the outside
    closed = close_gaps(lines)
    assert area_count(closed) == 3
    added = np.argwhere(closed & ~lines)
    assert added[:, 0].min() >= 50 and np.abs(added[:, 1] - 45).max() <= 2


def test_closed_drawings_narrow_passages_and_flat_areas_get_no_lines():
    """Nothing is added where no stroke ends: rooms joined by a corridor, a finger, small closed areas."""
    lines = np.zeros((120, 200), np.uint8)
    cv2.rectangle(lines, (2, 2), (197, 117), 1, 1)
    # two rooms joined by a 4 px corridor: a narrow waist of one area, not a gap
    cv2.rectangle(lines, (10, 10), (60, 60), 1, 1)
    cv2.rectangle(lines, (100, 10), (150, 60), 1, 1)
    lines[33:37, 60] = 0
    lines[33:37, 100] = 0
    lines[32, 60:101] = 1
    lines[37, 60:101] = 1
    # a dead-end finger 3 px wide, into a room, and small closed cells
    cv2.rectangle(lines, (20, 75), (90, 110), 1, 1)
    lines[90:93, 20] = 0
    lines[89, 2:21] = 1
    lines[93, 2:21] = 1
    for col in range(110, 190, 8):
        cv2.rectangle(lines, (col, 80), (col + 4, 84), 1, 1)
    lines = lines > 0
    ends = line_endpoints(lines)
    assert not ends.any()  # a closed drawing: no stroke has a free end
    assert np.array_equal(close_gaps(lines), lines)
    assert not close_gaps(np.zeros((50, 70), bool)).any()
    assert close_gaps(np.ones((5, 5), bool)).all()


def test_distinct_areas_are_not_merged_or_split():
    """Bridges only cut leaks: areas closed before stay the same pixels, the leaking box gets its own."""
    lines, _ = boxes_with_gaps([0, 0, 4], thickness=2)
    before, _ = closed_regions(lines)
    closed = close_gaps(lines)
    after, count = closed_regions(closed)
    assert count - 1 == 4
    inner = [before[30, 30 + index * 50] for index in range(2)]  # the two closed boxes
    for label in inner:
        assert np.array_equal(after == after[before == label][0], before == label)


def test_trapped_ball_labels_and_thinning_keep_areas():
    lines, _ = boxes_with_gaps([4], thickness=1)
    labels = trapped_ball_regions(lines, radius=3)
    assert labels.dtype == np.int32 and (labels[lines] == 0).all() and (labels[~lines] > 0).all()
    assert labels[30, 35] != labels[30, 2]  # inside and outside of the box are told apart

    rng = np.random.default_rng(1)
    canvas = np.zeros((120, 160), np.uint8)
    for _ in range(12):
        start, end = rng.integers(0, [160, 120], size=(2, 2))
        cv2.line(canvas, tuple(map(int, start)), tuple(map(int, end)), 1, int(rng.integers(1, 6)))
    thick = canvas > 0
    thin = thin_lines(thick)
    assert (thin <= thick).all() and area_count(thin) == area_count(thick)
    # one pixel wide: no 2x2 block of line pixels is left where the strokes were straight
    blocks = thin[:-1, :-1] & thin[1:, :-1] & thin[:-1, 1:] & thin[1:, 1:]
    assert blocks.sum() <= 0.01 * thin.sum()


def test_fast_enough_at_720p():
    rng = np.random.default_rng(2)
    canvas = np.zeros((720, 1280), np.uint8)
    for _ in range(300):
        start = rng.integers(0, [1280, 720])
        end = start + rng.integers(-120, 121, size=2)
        cv2.line(canvas, tuple(map(int, start)), tuple(map(int, end)), 1, 1)
    lines = canvas > 0
    close_gaps(lines[:64, :64])  # warm up
    started = time.perf_counter()
    closed = close_gaps(lines)
    elapsed = time.perf_counter() - started
    assert (closed >= lines).all()
    assert elapsed < 2.0, elapsed  # measured 0.15-0.25 s on 2 shared cores


def test_bad_input_and_settings():
    with pytest.raises(UserError, match="bool"):
        close_gaps(np.zeros((4, 4), np.uint8))
    with pytest.raises(UserError, match="1-64"):
        GapClosingConfig(max_gap=0)
    assert GapClosingConfig(max_gap=6).ball_radius == 3 and GapClosingConfig(max_gap=5).ball_radius == 3


def _grow_everywhere(labels, free, kernel, steps):
    """The growth of trapped-ball regions done over the whole frame at every step (the reference)."""
    values = labels.astype(np.float32)
    for _ in range(steps):
        todo = (values == 0) & free
        grown = cv2.dilate(values, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
        reached = todo & (grown > 0)
        if not reached.any():
            break
        values[reached] = grown[reached]
    return values.astype(np.int32)


def test_growing_only_near_the_last_step_gives_the_labels_of_growing_everywhere(monkeypatch):
    import longanimation.data.gap_closing as gap_closing

    rng = np.random.default_rng(4)
    for _ in range(3):  # scattered strokes with gaps of every width, many areas growing at once
        lines = np.zeros((160, 240), np.uint8)
        for _ in range(40):
            x0, y0, x1, y1 = (int(v) for v in rng.integers(0, 240, 4))
            cv2.line(lines, (x0, y0 % 160), (x1, y1 % 160), 1, int(rng.integers(1, 3)))
        lines = lines.astype(bool)
        for radius in (2, 4):
            windowed = trapped_ball_regions(lines, radius)
            with monkeypatch.context() as patched:
                patched.setattr(gap_closing, "_grow", _grow_everywhere)
                assert np.array_equal(windowed, trapped_ball_regions(lines, radius))
