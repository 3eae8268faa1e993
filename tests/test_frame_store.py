"""FrameStore: a shot's frames on disk, one at a time (data/frame_store.py)."""

from __future__ import annotations

import numpy as np
import pytest

from longanimation.data.frame_store import FrameStore
from longanimation.errors import UserError


def test_bool_and_color_frames_round_trip():
    rng = np.random.default_rng(0)
    masks = rng.random((5, 37, 53)) < 0.3  # a width that is not a multiple of 8
    colors = rng.integers(0, 256, (3, 9, 11, 3), dtype=np.uint8)
    with FrameStore.spool(masks) as store, FrameStore.spool(colors) as color_store:
        assert store.shape == masks.shape and store.dtype == np.bool_ and len(store) == 5
        assert store.frame_bytes == (37 * 53 + 7) // 8  # packed bits
        for index in (0, 4, 2, -1):
            assert np.array_equal(store[index], masks[index])
        assert np.array_equal(np.stack(list(store)), masks)
        assert np.array_equal(np.stack(list(color_store)), colors)
        with pytest.raises(IndexError):
            store[5]


def test_spool_refuses_mixed_sizes_and_nothing():
    frames = [np.zeros((4, 4), bool), np.zeros((4, 5), bool)]
    with pytest.raises(UserError, match="b.png is 5x4"):
        FrameStore.spool(frames, ["a.png", "b.png"], "shot")
    with pytest.raises(UserError, match="no frames"):
        FrameStore.spool([], [], "shot")


def test_loading_line_art_holds_no_more_for_a_longer_shot(tmp_path):
    """`colorize`'s loader streams: its peak (Python-tracked) memory is the same for 10 and 40 frames."""
    import tracemalloc

    from PIL import Image

    from longanimation.cli.colorize import load_lineart

    rng = np.random.default_rng(0)
    peaks = []
    for count in (10, 40):
        folder = tmp_path / f"shot{count}"
        folder.mkdir()
        for index in range(count):
            image = np.full((600, 800), 255, np.uint8)
            image[rng.integers(0, 600, 2000), rng.integers(0, 800, 2000)] = 0
            Image.fromarray(image).save(folder / f"{index:03d}.png")
        tracemalloc.start()
        try:
            store, _ = load_lineart(folder)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert len(store) == count
        store.close()
    # 30 more frames read as RGB are 41 MB: a loader that keeps any part of each frame alive shows it.
    assert peaks[1] <= 1.1 * peaks[0] + 2**21, [peak / 2**20 for peak in peaks]
