"""The manifest: a JSON description of a toon shot and its ground truth.

Frame ranges are inclusive ``[start, end]`` pairs of 0-based frame numbers.
Keys:

- ``generator``, ``version``: who wrote it (``version`` changes whenever the
  same seed would give different pictures);
- ``seed``, ``frames``, ``height``, ``width``, ``fps``, ``line_width``;
- ``caption``: a text prompt describing the shot; ``setting``: place and time of day;
- ``region_count``: region ids are ``1 .. region_count - 1`` (0 is unused);
- ``drawing_index``: per frame, the drawing it shows (held frames share one);
- ``held_stretches``: ``{start, end, hold}`` stretches on twos (hold 2) or threes (3);
- ``objects``: back to front (``id`` is the depth order; 0 is the background),
  each ``{id, name, kind, role, template, parts, outlines, visible_frames}``;
  ``parts`` and ``outlines`` are regions ``{id, name, color [r, g, b],
  visible_frames}``; an object is visible in a frame when any of its regions is;
- ``events``: the hard cases the shot contains: ``enters_late`` (objects not
  in frame 0 that appear later), ``returns`` (``{object, left, returned,
  absent_frames}``: last frame seen before an absence of at least
  ``return_gap`` frames, first frame seen after), ``crossings`` (``{objects,
  frame}``: planned meetings), ``same_shape`` (groups of objects sharing a shape).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .script import return_gap

if TYPE_CHECKING:
    from .world import ToonObject, ToonRegion, ToonWorld

GENERATOR = "longanimation.toon"
VERSION = "1"


def frame_ranges(visible: np.ndarray) -> list[list[int]]:
    """Inclusive ``[start, end]`` runs of True in a (frames,) bool array."""
    edges = np.diff(np.concatenate([[0], visible.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    return [[int(a), int(b)] for a, b in zip(starts, ends)]


def build_manifest(world: ToonWorld) -> dict:
    """Describe ``world`` (renders every drawing once to find what is visible, then cached)."""
    config = world.config
    seen = world.region_visibility()

    def region_entry(region: ToonRegion) -> dict:
        return {"id": region.id, "name": region.name, "color": list(region.color),
                "visible_frames": frame_ranges(seen[:, region.id])}

    def object_seen(obj: ToonObject) -> np.ndarray:
        return seen[:, [r.id for r in (*obj.parts, obj.outline)]].any(axis=1)

    objects_seen = {obj.index: object_seen(obj) for obj in world.objects}
    return {
        "generator": GENERATOR,
        "version": VERSION,
        "seed": config.seed,
        "frames": config.frames,
        "height": config.height,
        "width": config.width,
        "fps": config.fps,
        "line_width": config.outline_width,
        "caption": world.caption,
        "setting": {"place": world.place, "time_of_day": world.time_of_day},
        "region_count": world.region_count,
        "drawing_index": [int(i) for i in world.drawing_indices()],
        "held_stretches": [{"start": s.start, "end": s.end, "hold": s.hold} for s in world.held_stretches],
        "objects": [
            {
                "id": obj.index,
                "name": obj.name,
                "kind": obj.kind,
                "role": obj.role,
                "template": obj.template,
                "parts": [region_entry(part) for part in obj.parts],
                "outlines": [region_entry(obj.outline)],
                "visible_frames": frame_ranges(objects_seen[obj.index]),
            }
            for obj in world.objects
        ],
        "events": _events(world, objects_seen),
    }


def _events(world: ToonWorld, objects_seen: dict[int, np.ndarray]) -> dict:
    gap = return_gap(world.frames)
    enters_late, returns = [], []
    for index, visible in objects_seen.items():
        runs = frame_ranges(visible)
        if runs and runs[0][0] > 0:
            enters_late.append(index)
        for (_, left), (returned, _) in zip(runs[:-1], runs[1:]):
            absent = returned - left - 1
            if absent >= gap:
                returns.append({"object": index, "left": left, "returned": returned, "absent_frames": absent})
    shapes: dict[str, list[int]] = {}
    for obj in world.objects[1:]:
        shapes.setdefault(obj.template, []).append(obj.index)
    return {
        "return_gap": gap,
        "enters_late": enters_late,
        "returns": returns,
        "crossings": [{"objects": list(c.objects), "frame": c.frame} for c in world.crossings],
        "same_shape": [group for group in shapes.values() if len(group) > 1],
    }
