"""Segment planning, keyframe runs, held drawings and Color Consistency Fusion (eq. 6)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from longanimation.pipeline.fusion import (
    ColorConsistencyFusion,
    fusion_weights,
    shared_latent_frames,
    stitch_overlap,
)
from longanimation.pipeline.planning import (
    drawing_members,
    held_drawing_groups,
    keyframes_by_drawing,
    plan_runs,
    plan_segments,
)


@pytest.mark.parametrize("frames", [1, 2, 3, 5, 16, 17, 18, 30, 33, 81, 82, 100, 147, 300, 1000])
@pytest.mark.parametrize("segment,overlap", [(17, 4), (81, 16), (9, 0)])
def test_segments_cover_every_frame_once_on_the_latent_grid(frames, segment, overlap):
    segments = plan_segments(frames, segment, overlap)
    assert segments[0].start == 0 and segments[-1].end == frames
    for previous, current in zip(segments, segments[1:]):
        assert current.start > previous.start
        assert (current.start - previous.start) % 4 == 0  # latent frames align
        assert current.shared_frames == previous.end - current.start >= overlap + 1
        assert current.length == segment
    for seg in segments:
        assert (seg.length - 1) % 4 == 0 and 0 <= seg.padding <= 3
        assert seg.end <= frames
    # The frames each segment contributes after stitching partition the shot.
    owned = []
    for index, seg in enumerate(segments):
        first = seg.start if index == 0 else seg.start + stitch_overlap(seg.shared_frames)
        last = seg.end if index == len(segments) - 1 else segments[index + 1].start + stitch_overlap(segments[index + 1].shared_frames)
        owned.extend(range(first, last))
    assert owned == list(range(frames))


def test_regular_segments_share_overlap_plus_one_frames():
    segments = plan_segments(300, 81, 16)
    assert [s.start for s in segments[:3]] == [0, 64, 128]
    assert segments[1].shared_frames == 17 and shared_latent_frames(17, 4) == 4


def test_bad_segment_settings():
    with pytest.raises(ValueError):
        plan_segments(10, 16, 4)
    with pytest.raises(ValueError):
        plan_segments(10, 17, 3)
    with pytest.raises(ValueError):
        plan_segments(0, 17, 4)


def test_runs_from_keyframes_anywhere():
    runs = plan_runs(600, [300])
    assert [(r.keyframe, r.direction, r.frames[0], r.frames[-1]) for r in runs] == [(300, 1, 300, 599), (300, -1, 300, 0)]
    runs = plan_runs(100, [10, 50, 99])
    covered = sorted(f for r in runs for f in r.frames[1:]) + [10, 50, 99]
    assert sorted(covered) == list(range(100))
    for run in runs:
        # each frame is colored from its nearest keyframe
        assert all(abs(f - run.keyframe) <= min(abs(f - k) for k in (10, 50, 99)) for f in run.frames)
    with pytest.raises(ValueError):
        plan_runs(10, [10])


def test_held_drawings():
    a, b, c = (np.full((4, 4), v, bool) for v in (0, 1, 0))
    c[0, 0] = True
    assert held_drawing_groups([a, a, b, b, b, c, a]) == [0, 0, 2, 2, 2, 5, 6]
    groups = held_drawing_groups([a, a, b, b, b, c, a])
    assert drawing_members(groups) == {0: [0, 1], 2: [2, 3, 4], 5: [5], 6: [6]}
    # Keyframes at frames 1 and 0 share drawing 0: the earliest one colors it.
    assert keyframes_by_drawing(groups, {1: "late", 0: "early", 3: "b"}) == {0: "early", 2: "b"}


def test_fusion_weights_match_official_release():
    assert torch.allclose(1 - fusion_weights(4), torch.tensor([0.8, 0.6, 0.4, 0.2], dtype=torch.float64))


def test_fusion_blends_only_late_steps_and_aligned_latents():
    steps, latents = 10, 5
    fusion = ColorConsistencyFusion(num_steps=steps, fusion_steps=4, temporal_compression=4)
    previous = [torch.full((1, latents, 2, 3, 3), float(step)) for step in range(steps)]
    fusion.begin_segment()
    for step in range(steps):
        fusion.record(previous[step], step, tail_latents=2)
    fusion.end_segment()
    assert sorted(fusion.stored) == [6, 7, 8, 9]
    new = torch.full((1, latents, 2, 3, 3), 100.0)
    assert torch.equal(fusion.blend(new, 5, shared_frames=9), new)  # early step: untouched
    fused = fusion.blend(new, 7, shared_frames=9)  # 9 shared frames -> 2 aligned latents
    alpha = 1 / 3
    assert torch.allclose(fused[:, 1], torch.full_like(fused[:, 1], alpha * 100 + (1 - alpha) * 7))
    assert torch.allclose(fused[:, 2], torch.full_like(fused[:, 2], 2 * alpha * 100 + (1 - 2 * alpha) * 7))
    assert torch.equal(fused[:, 0], new[:, 0]) and torch.equal(fused[:, 3:], new[:, 3:])
    state = fusion.state_dict()
    restored = ColorConsistencyFusion(num_steps=steps, fusion_steps=4, temporal_compression=4)
    restored.load_state_dict(state)
    assert torch.equal(restored.blend(new, 7, 9), fused)


def test_fusion_disabled_and_bad_start():
    fusion = ColorConsistencyFusion(num_steps=10, fusion_steps=0, temporal_compression=4)
    assert not any(fusion.is_late(step) for step in range(10))
    assert all(ColorConsistencyFusion(num_steps=10, fusion_steps=10, temporal_compression=4).is_late(s) for s in range(10))
    with pytest.raises(ValueError):
        ColorConsistencyFusion(num_steps=10, fusion_steps=11, temporal_compression=4)


def latent_pixel_frames(start: int, latent: int, compression: int) -> range:
    """Pixel frames (in shot positions) that latent ``latent`` of a segment starting at ``start`` covers."""
    if latent == 0:
        return range(start, start + 1)
    return range(start + (latent - 1) * compression + 1, start + latent * compression + 1)


@pytest.mark.parametrize("compression,segment_frames,overlap", [(1, 17, 4), (4, 17, 4), (4, 81, 16)])
def test_fusion_pairs_latents_that_cover_the_same_frames(compression, segment_frames, overlap):
    first, second = plan_segments(3 * segment_frames, segment_frames, overlap, compression)[:2]
    latents = (segment_frames - 1) // compression + 1
    count = shared_latent_frames(second.shared_frames, compression)
    assert count == overlap // compression  # C / compression latents are blended (eq. 6)
    fusion = ColorConsistencyFusion(num_steps=3, fusion_steps=3, temporal_compression=compression)
    previous = torch.arange(latents, dtype=torch.float32).view(1, latents, 1, 1, 1).expand(1, latents, 2, 2, 2)
    fusion.begin_segment()
    fusion.record(previous, 0, tail_latents=count)
    fusion.end_segment()
    new = torch.full((1, latents, 2, 2, 2), 1000.0)
    fused = fusion.blend(new, 0, second.shared_frames)
    weights = fusion_weights(count)
    for k in range(1, count + 1):
        partner = latents - count + k - 1  # 0-based index of z_{i-1}^{L-C+k}, k 1-based
        expected = weights[k - 1] * 1000.0 + (1 - weights[k - 1]) * partner
        assert torch.allclose(fused[:, k], torch.full_like(fused[:, k], float(expected)))
        assert latent_pixel_frames(second.start, k, compression) == latent_pixel_frames(first.start, partner, compression)
    assert torch.equal(fused[:, 0], new[:, 0]) and torch.equal(fused[:, count + 1 :], new[:, count + 1 :])
