"""Region ids: every flat-colored paint region and every outline gets one.

A region may have several pieces (all windows of one building, an object's
outline) but always exactly one color.

Ids are handed out in painting order: the background's regions first (in the
order they are painted), then each object's parts from the back object to the
front one. A larger id is therefore always painted later, i.e. in front; the
outline inker relies on this. Id 0 is never used. Each object also owns one
outline id whose color is its ink.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .palette import RGB

_UNUSED_COLOR: RGB = (255, 0, 255)


@dataclass(frozen=True)
class Region:
    """One region id: its name, flat color and owning object."""

    id: int
    name: str
    color: RGB
    object_index: int


class RegionTable:
    """Allocates region ids and builds the lookup tables the renderer uses."""

    def __init__(self) -> None:
        self._regions: list[Region] = [Region(0, "unused", _UNUSED_COLOR, -1)]
        self._outline_of_object: dict[int, int] = {}

    def add_part(self, object_index: int, name: str, color: RGB) -> int:
        """A new paint region of ``object_index``; returns its id."""
        if object_index in self._outline_of_object:
            raise ValueError(f"object {object_index} already has its outline; add its parts first")
        return self._add(object_index, name, color)

    def add_outline(self, object_index: int, name: str, color: RGB) -> int:
        """The outline id of ``object_index`` (added once, after its parts)."""
        region_id = self._add(object_index, name, color)
        self._outline_of_object[object_index] = region_id
        return region_id

    def _add(self, object_index: int, name: str, color: RGB) -> int:
        region_id = len(self._regions)
        if region_id >= 1 << 16:
            raise ValueError("more than 65535 regions: they would not fit a 16-bit region map")
        self._regions.append(Region(region_id, name, tuple(int(c) for c in color), object_index))
        return region_id

    def __len__(self) -> int:
        return len(self._regions)

    def __getitem__(self, region_id: int) -> Region:
        return self._regions[region_id]

    def colors(self) -> np.ndarray:
        """(N, 3) uint8: the flat RGB color of every region id."""
        return np.array([region.color for region in self._regions], dtype=np.uint8)

    def outline_lookup(self) -> np.ndarray:
        """(N,) int32: for every paint region id, the outline id of the object owning it."""
        lookup = np.zeros(len(self._regions), dtype=np.int32)
        for region in self._regions[1:]:
            lookup[region.id] = self._outline_of_object[region.object_index]
        return lookup
