"""The camera: holds and eased pans over the panorama, never faster than ``Stage.camera_top_speed``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .stage import Stage


@dataclass(frozen=True)
class CameraTrack:
    """Top-left corner of the view in the panorama, per frame (whole pixels)."""

    x: np.ndarray  # (frames,) int32
    y: np.ndarray  # (frames,) int32


def plan_camera(stage: Stage, frames: int, rng: np.random.Generator) -> CameraTrack:
    """Alternate holds (1 to 5 seconds) with pans to random places, eased in and out."""
    max_x = stage.panorama_width - stage.view_width
    max_y = stage.panorama_height - stage.view_height
    xs = np.empty(frames)
    ys = np.empty(frames)
    x, y = rng.uniform(0.0, max_x), rng.uniform(0.0, max_y)
    t = 0
    while t < frames:
        hold = int(rng.integers(24, 121))
        xs[t:t + hold], ys[t:t + hold] = x, y
        t += hold
        if t >= frames:
            break
        target_x, target_y = rng.uniform(0.0, max_x), rng.uniform(0.0, max_y)
        # A cosine-eased pan peaks at pi/2 times its mean speed.
        shortest = math.pi / 2.0 * max(abs(target_x - x), abs(target_y - y)) / stage.camera_top_speed
        duration = max(2, int(math.ceil(shortest * rng.uniform(1.0, 1.6))))
        ease = (1.0 - np.cos(np.pi * np.arange(1, duration + 1) / duration)) / 2.0
        xs[t:t + duration] = (x + (target_x - x) * ease)[: frames - t]
        ys[t:t + duration] = (y + (target_y - y) * ease)[: frames - t]
        x, y = target_x, target_y
        t += duration
    return CameraTrack(np.rint(xs).astype(np.int32), np.rint(ys).astype(np.int32))
