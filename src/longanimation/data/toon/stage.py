"""The set's geometry: panorama size, horizon, walking lanes, perspective and speeds.

World coordinates are panorama pixels: x right, y down, (0, 0) the panorama's
top-left corner. The camera shows a ``view_width`` x ``view_height`` window of
the panorama. Figures standing lower on the ground (larger y) are nearer and
drawn taller.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PANORAMA_WIDTH = 3.0  # panorama width / view width
PANORAMA_HEIGHT = 1.15  # panorama height / view height (room for a vertical tilt)
HORIZON = 0.56  # fractions of the panorama height
LANE_BACK, LANE_FRONT = 0.70, 0.82  # where characters usually stand
NEAREST_APPROACH = 0.88  # how near the camera the front character may walk
SCENERY_LANE = 0.93  # foreground props stand here, in front of everyone
REFERENCE_LANE, REFERENCE_HEIGHT = 0.77, 0.34  # a figure on this lane is this tall (fraction of view height)
WALK_SPEED = 1.0 / 128.0  # view widths per frame: a walk across the screen takes 128 frames
RUN_SPEED = 2.0 * WALK_SPEED
CAMERA_TOP_SPEED = 0.45 * WALK_SPEED  # pans stay slower than walks, so walkers can always leave the frame


@dataclass(frozen=True)
class Stage:
    """Sizes and speeds of one set, in pixels and pixels per frame."""

    view_height: int
    view_width: int

    @property
    def panorama_height(self) -> int:
        return int(round(self.view_height * PANORAMA_HEIGHT))

    @property
    def panorama_width(self) -> int:
        return int(round(self.view_width * PANORAMA_WIDTH))

    @property
    def horizon_y(self) -> float:
        return HORIZON * self.panorama_height

    def lane_y(self, depth: float) -> float:
        """Ground y of the lane ``depth`` of the way from the back lane (0) to the front lane (1)."""
        return (LANE_BACK + (LANE_FRONT - LANE_BACK) * depth) * self.panorama_height

    @property
    def nearest_y(self) -> float:
        return NEAREST_APPROACH * self.panorama_height

    @property
    def scenery_y(self) -> float:
        return SCENERY_LANE * self.panorama_height

    def figure_height(self, ground_y: np.ndarray | float) -> np.ndarray | float:
        """Height in pixels of a figure standing at ``ground_y`` (linear perspective from the horizon)."""
        reference_y = REFERENCE_LANE * self.panorama_height
        return REFERENCE_HEIGHT * self.view_height * (ground_y - self.horizon_y) / (reference_y - self.horizon_y)

    @property
    def walk_speed(self) -> float:
        return WALK_SPEED * self.view_width

    @property
    def run_speed(self) -> float:
        return RUN_SPEED * self.view_width

    @property
    def camera_top_speed(self) -> float:
        return CAMERA_TOP_SPEED * self.view_width
