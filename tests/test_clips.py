"""Training clips: index sampling, real-clip folders, captions and toon worlds."""

from __future__ import annotations

import numpy as np
import pytest

from longanimation.data.clips import (
    ClipConfig,
    FolderClipDataset,
    ToonClipDataset,
    resize_cover,
    sample_clip_indices,
)
from longanimation.data.video_io import write_png_folder, write_video
from longanimation.errors import UserError


def test_sampled_indices_respect_paper_rules():
    config = ClipConfig(segment_frames=17, history_frames=32, history_stride=2, max_reference_distance=400)
    rng = np.random.default_rng(0)
    distances = []
    for _ in range(500):
        start, reference, history = sample_clip_indices(600, config, rng)
        assert 0 <= start <= 600 - 17
        assert 0 <= reference <= start  # drawn from earlier in the shot
        assert all(0 <= t < start for t in history) and history == sorted(history)
        assert len(history) == min(32, len(range(start - 1, -1, -2)))
        assert all(b - a == 2 for a, b in zip(history, history[1:]))
        distances.append(start - reference)
    assert max(distances) >= 200  # hundreds of frames back when the shot allows


def test_min_history_frames_and_too_short_shot():
    config = ClipConfig(segment_frames=17, min_history_frames=50)
    rng = np.random.default_rng(1)
    assert all(sample_clip_indices(100, config, rng)[0] >= 50 for _ in range(50))
    with pytest.raises(ValueError):
        sample_clip_indices(10, config, rng)


def _flat_clip(count, height=40, width=60, seed=0):
    rng = np.random.default_rng(seed)
    colors = rng.integers(0, 256, size=(count, 1, 1, 3), dtype=np.uint8)
    frames = np.broadcast_to(colors, (count, height, width, 3)).copy()
    frames[:, 10:12, :] = 20  # a dark line so the extractor has something to find
    return frames


def test_folder_dataset_skips_and_counts_short_clips(tmp_path):
    write_png_folder(tmp_path / "long_png", _flat_clip(100))
    write_video(tmp_path / "nested" / "long.mp4", _flat_clip(95, seed=1), fps=24)
    write_png_folder(tmp_path / "short_png", _flat_clip(30))
    write_video(tmp_path / "short.mp4", _flat_clip(20), fps=24)
    (tmp_path / "captions.csv").write_text("path,caption\nlong_png,a girl in a red dress\nlong.mp4,a blue car\n")
    config = ClipConfig(segment_frames=9, history_frames=8, height=32, width=32)
    dataset = FolderClipDataset(tmp_path, config, captions=tmp_path / "captions.csv", length=6)
    assert dataset.skipped == 2
    assert [source.num_frames for source in dataset.sources] == [100, 95]
    clip = dataset[0]
    assert clip.target.shape == (9, 32, 32, 3) and clip.sketches.shape == (9, 32, 32)
    assert clip.sketches.dtype == bool and clip.sketches.any()
    assert clip.reference.shape == (32, 32, 3) and clip.reference_index <= clip.target_start
    assert clip.history.shape[1:] == (32, 32, 3)
    assert {dataset[i].prompt for i in range(2)} == {"a girl in a red dress", "a blue car"}
    # Deterministic per index, whatever the access order.
    again = dataset[0]
    assert np.array_equal(again.target, clip.target) and again.target_start == clip.target_start


def test_folder_dataset_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        FolderClipDataset(tmp_path / "missing")
    write_png_folder(tmp_path / "short", _flat_clip(10))
    with pytest.raises(UserError, match="no usable clips"):
        FolderClipDataset(tmp_path)
    write_png_folder(tmp_path / "long", _flat_clip(100))
    (tmp_path / "bad.csv").write_text("file,text\na,b\n")
    with pytest.raises(UserError, match="'path' and 'caption'"):
        FolderClipDataset(tmp_path, captions=tmp_path / "bad.csv")


def test_resize_cover_keeps_aspect_and_crops():
    frames = np.zeros((2, 90, 160, 3), np.uint8)
    frames[:, :, 70:90] = 255  # a centred vertical bar
    out = resize_cover(frames, 64, 64)
    assert out.shape == (2, 64, 64, 3)
    assert out[0, 32, 32].mean() > 200 and out[0, 32, 2].mean() < 50


def test_toon_dataset_yields_history_reference_and_prompt():
    config = ClipConfig(segment_frames=9, history_frames=16, history_stride=2, height=64, width=64)
    dataset = ToonClipDataset([11, 12], config, world_frames=120, length=4)
    clip = dataset[1]
    assert clip.target.shape == (9, 64, 64, 3) and clip.sketches.shape == (9, 64, 64)
    assert clip.reference_index <= clip.target_start and clip.source == "toon:12"
    assert len(clip.history) == len(clip.history_indices)
    assert isinstance(clip.prompt, str) and clip.prompt
    again = ToonClipDataset([11, 12], config, world_frames=120, length=4)[1]
    assert np.array_equal(again.target, clip.target) and np.array_equal(again.reference, clip.reference)


def test_toon_reference_sketch_is_the_reference_frames_line_art():
    from longanimation.data.toon import ToonConfig, ToonWorld

    config = ClipConfig(segment_frames=5, history_frames=0, height=64, width=64)
    clip = ToonClipDataset([5], config, world_frames=80, length=2)[1]
    world = ToonWorld(ToonConfig(seed=5, frames=80, height=64, width=64))
    assert clip.reference_sketch.dtype == bool
    assert np.array_equal(clip.reference_sketch, world.render(clip.reference_index).lineart)


def test_crops_cut_every_part_of_a_clip_to_one_window():
    full = ClipConfig(segment_frames=5, history_frames=6, height=64, width=64)
    cropped = ClipConfig(segment_frames=5, history_frames=6, height=64, width=64, crop_height=24, crop_width=40)
    whole = ToonClipDataset([3], full, world_frames=80, length=3)[2]
    clip = ToonClipDataset([3], cropped, world_frames=80, length=3)[2]
    assert clip.target.shape == (5, 24, 40, 3) and clip.sketches.shape == (5, 24, 40)
    assert clip.reference.shape == (24, 40, 3) and clip.reference_sketch.shape == (24, 40)
    assert clip.history.shape == (6, 24, 40, 3)
    # The same window everywhere: find it in the uncropped clip's first frame.
    windows = [
        (top, left)
        for top in range(64 - 24 + 1)
        for left in range(64 - 40 + 1)
        if np.array_equal(whole.target[0, top : top + 24, left : left + 40], clip.target[0])
    ]
    assert windows, "the crop is not a window of the full frame"
    top, left = windows[0]
    assert np.array_equal(whole.reference[top : top + 24, left : left + 40], clip.reference)
    assert np.array_equal(whole.history[:, top : top + 24, left : left + 40], clip.history)
    assert np.array_equal(whole.sketches[:, top : top + 24, left : left + 40], clip.sketches)
    with pytest.raises(ValueError):
        ClipConfig(height=64, width=64, crop_height=65)


def test_toon_object_mask_marks_characters_and_props_and_is_cropped_with_the_clip():
    from longanimation.data.toon import ToonConfig, ToonWorld

    config = ClipConfig(segment_frames=5, history_frames=0, height=64, width=64)
    clip = ToonClipDataset([4], config, world_frames=80, length=2)[1]
    world = ToonWorld(ToonConfig(seed=4, frames=80, height=64, width=64))
    background = {part.id for part in world.objects[0].parts} | {world.objects[0].outline.id}
    regions = np.stack([world.render(t).regions for t in range(clip.target_start, clip.target_start + 5)])
    assert clip.object_mask.shape == (5, 64, 64) and clip.object_mask.any() and not clip.object_mask.all()
    assert np.array_equal(clip.object_mask, ~np.isin(regions, list(background)))
    cropped = ClipConfig(segment_frames=5, history_frames=0, height=64, width=64, crop_height=32, crop_width=16)
    assert ToonClipDataset([4], cropped, world_frames=80, length=2)[1].object_mask.shape == (5, 32, 16)


def test_memory_weighted_objects_are_shown_by_the_history_and_not_by_the_reference():
    from longanimation.data.toon import ToonConfig, ToonWorld

    config = ClipConfig(segment_frames=9, history_frames=24, max_reference_distance=200, min_history_frames=24,
                        height=64, width=64)
    dataset = ToonClipDataset([1, 2], config, world_frames=240, weighted_objects="memory", length=6)
    worlds = {seed: ToonWorld(ToonConfig(seed=seed, frames=240, height=64, width=64)) for seed in (1, 2)}
    marked = 0
    for index in range(len(dataset)):
        clip = dataset[index]
        world = worlds[int(clip.source.split(":")[1])]
        object_of = {region: obj.index for obj in world.objects for region in [p.id for p in obj.parts] + [obj.outline.id]}

        def objects(t: int) -> set[int]:
            return {object_of[r] for r in np.unique(world.render(t).regions)} - {0}

        history = set().union(*(objects(t) for t in clip.history_indices))
        memory_only = history - objects(clip.reference_index)
        targets = np.stack([world.render(t).regions for t in range(clip.target_start, clip.target_start + 9)])
        expected = np.isin(targets, [r for r, o in object_of.items() if o in memory_only])
        assert np.array_equal(clip.object_mask, expected)
        marked += bool(clip.object_mask.any())
    assert marked >= 4  # clips are redrawn until their target shows such an object
    with pytest.raises(ValueError, match="weighted_objects"):
        ToonClipDataset([1], config, weighted_objects="some")
