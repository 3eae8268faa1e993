"""The painted background: a static panorama of flat regions, wider and taller than the view.

The panorama is a region-id map (see :mod:`.regions`); its regions belong to
object 0, the background. It is painted once per world; each frame crops it
at the camera position.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .palette import SkyScheme
from .regions import RegionTable
from .shapes import band, ellipse, polygon, rect
from .stage import Stage

BACKGROUND = 0
"""Object index of the background."""

PLACES = {"town": "through a town", "countryside": "across the countryside", "park": "through a park"}
"""Kinds of set, with how a caption says where the walk goes."""


@dataclass
class _Painter:
    """Paints regions into the panorama id map, allocating one id per region in painting order."""

    ids: np.ndarray
    table: RegionTable

    def new_region(self, name: str, color) -> int:
        return self.table.add_part(BACKGROUND, name, color)

    def fill(self, region_id: int, *polygons: np.ndarray) -> None:
        for points in polygons:  # one call each: fillPoly would leave overlaps of polygons drawn together empty
            cv2.fillPoly(self.ids, [np.rint(points).astype(np.int32)], region_id, lineType=cv2.LINE_8)

    def paint(self, name: str, color, *polygons: np.ndarray) -> None:
        self.fill(self.new_region(name, color), *polygons)


def paint_backdrop(table: RegionTable, stage: Stage, scheme: SkyScheme, place: str,
                   rng: np.random.Generator) -> np.ndarray:
    """Paint the panorama for ``place`` under ``scheme``; returns its (H, W) int32 region-id map."""
    height, width = stage.panorama_height, stage.panorama_width
    painter = _Painter(np.empty((height, width), dtype=np.int32), table)
    painter.ids[:] = painter.new_region("sky", scheme.sky)
    u = stage.view_height  # set details are sized in view heights
    horizon = stage.horizon_y

    sun_x, sun_y = rng.uniform(0.1, 0.9) * width, rng.uniform(0.12, 0.28) * height
    painter.paint("moon" if scheme.name == "night" else "sun", scheme.sun,
                  ellipse(sun_x, sun_y, 0.07 * u, 0.07 * u, n=32))
    for k, cloud_x in enumerate(np.sort(rng.uniform(0.0, width, size=rng.integers(3, 7)))):
        r, cloud_y = rng.uniform(0.035, 0.06) * u, rng.uniform(0.06, 0.3) * height
        painter.paint(f"cloud {k + 1}", scheme.cloud,
                      ellipse(cloud_x - 1.2 * r, cloud_y + 0.3 * r, 1.1 * r, 0.7 * r),
                      ellipse(cloud_x, cloud_y, 1.5 * r, r, n=24),
                      ellipse(cloud_x + 1.3 * r, cloud_y + 0.35 * r, r, 0.65 * r))
    painter.paint("far hills", scheme.far_hills, _ridge(rng, width, horizon, horizon - 0.13 * height, 0.05 * height))
    if place != "town":
        painter.paint("near hills", scheme.near_hills,
                      _ridge(rng, width, horizon, horizon - 0.05 * height, 0.035 * height))
    painter.paint("ground", scheme.ground, rect(0, horizon, width, height))
    if place == "town":
        _paint_town(painter, stage, scheme, rng)
    else:
        _paint_fields(painter, stage, scheme, rng)
        if place == "park":
            painter.paint("pond", scheme.water, ellipse(rng.uniform(0.2, 0.8) * width, horizon + 0.07 * height,
                                                        0.3 * u, 0.035 * height, n=40))
        _paint_trees(painter, stage, scheme, rng, count=int(rng.integers(6, 10)) if place == "park" else 4)
        if place == "countryside":
            _paint_barn(painter, stage, scheme, rng)
        _paint_path(painter, stage, scheme, rng)
    return painter.ids


def _ridge(rng: np.random.Generator, width: int, bottom: float, mean_y: float, amplitude: float) -> np.ndarray:
    xs = np.linspace(0.0, width, max(8, width // 6))
    ys = np.full_like(xs, mean_y)
    for waves in rng.uniform(1.0, 6.0, size=3):
        ys += amplitude / 2.0 * np.sin(2.0 * np.pi * waves * xs / width + rng.uniform(0.0, 2.0 * np.pi))
    ridge = np.stack([xs, ys], axis=1)
    return np.concatenate([ridge, [(width, bottom + 1), (0.0, bottom + 1)]])


def _paint_town(painter: _Painter, stage: Stage, scheme: SkyScheme, rng: np.random.Generator) -> None:
    u, width, height = stage.view_height, stage.panorama_width, stage.panorama_height
    base = stage.horizon_y + 0.03 * height
    x, k = rng.uniform(0.0, 0.1) * u, 0
    while x < width:
        k += 1
        w, h = rng.uniform(0.16, 0.32) * u, rng.uniform(0.16, 0.42) * u
        top = base - h
        painter.paint(f"building {k} wall", scheme.walls[rng.integers(len(scheme.walls))], rect(x, top, x + w, base))
        roof_color = scheme.roofs[rng.integers(len(scheme.roofs))]
        if rng.random() < 0.5:
            peak = rng.uniform(0.07, 0.13) * u
            painter.paint(f"building {k} roof", roof_color,
                          polygon([(x - 0.02 * u, top), (x + w + 0.02 * u, top), (x + w / 2, top - peak)]))
        else:
            painter.paint(f"building {k} roof", roof_color,
                          rect(x - 0.015 * u, top - 0.035 * u, x + w + 0.015 * u, top))
        door_w, door_h = 0.06 * u, 0.1 * u
        door_x = x + rng.uniform(0.2, 0.8) * (w - door_w)
        columns, rows = max(1, int(w / (0.08 * u))), max(1, int((h - door_h - 0.04 * u) / (0.09 * u)))
        pitch_x, pitch_y = w / columns, (h - door_h - 0.04 * u) / rows
        windows = [rect(x + (i + 0.5) * pitch_x - 0.02 * u, top + 0.03 * u + j * pitch_y,
                        x + (i + 0.5) * pitch_x + 0.02 * u, top + 0.03 * u + j * pitch_y + 0.05 * u)
                   for i in range(columns) for j in range(rows)]
        painter.paint(f"building {k} windows", scheme.window, *windows)
        painter.paint(f"building {k} door", scheme.door, rect(door_x, base - door_h, door_x + door_w, base))
        x += w + rng.uniform(0.02, 0.12) * u
    road_top, road_bottom = 0.85 * height, 0.97 * height
    painter.paint("road", scheme.path, rect(0, road_top, width, road_bottom))
    dash_y, dash_len = (road_top + road_bottom) / 2, 0.08 * u
    dashes = [rect(x0, dash_y - 0.008 * u, x0 + dash_len, dash_y + 0.008 * u)
              for x0 in np.arange(0.0, width, 2.2 * dash_len)]
    painter.paint("road markings", scheme.marking, *dashes)


def _paint_fields(painter: _Painter, stage: Stage, scheme: SkyScheme, rng: np.random.Generator) -> None:
    u, width, height = stage.view_height, stage.panorama_width, stage.panorama_height
    for k, field_x in enumerate(np.sort(rng.uniform(0.0, width, size=rng.integers(2, 5)))):
        field_y = stage.horizon_y + rng.uniform(0.03, 0.1) * height
        painter.paint(f"field {k + 1}", scheme.field,
                      ellipse(field_x, field_y, rng.uniform(0.25, 0.5) * u, rng.uniform(0.02, 0.04) * height, n=36))


def _paint_trees(painter: _Painter, stage: Stage, scheme: SkyScheme, rng: np.random.Generator, count: int) -> None:
    u, width, height = stage.view_height, stage.panorama_width, stage.panorama_height
    bases = np.sort(stage.horizon_y + rng.uniform(0.0, 0.06, size=count) * height)
    for k, base in enumerate(bases):
        x, scale = rng.uniform(0.0, width), rng.uniform(0.8, 1.3)
        trunk_top = base - 0.11 * u * scale
        trunk = 0.015 * u * scale
        painter.paint(f"tree {k + 1} trunk", scheme.trunk, rect(x - trunk, trunk_top, x + trunk, base))
        r = 0.065 * u * scale
        painter.paint(f"tree {k + 1} leaves", scheme.leaves[rng.integers(len(scheme.leaves))],
                      ellipse(x - 0.8 * r, trunk_top, r, 0.85 * r), ellipse(x + 0.8 * r, trunk_top, r, 0.85 * r),
                      ellipse(x, trunk_top - 0.7 * r, 1.1 * r, r, n=24))


def _paint_barn(painter: _Painter, stage: Stage, scheme: SkyScheme, rng: np.random.Generator) -> None:
    u = stage.view_height
    x, base = rng.uniform(0.1, 0.8) * stage.panorama_width, stage.horizon_y + 0.02 * stage.panorama_height
    w, h = 0.3 * u, 0.2 * u
    painter.paint("barn wall", scheme.roofs[0], rect(x, base - h, x + w, base))
    eaves, ridge = base - h, base - h - 0.1 * u
    painter.paint("barn roof", scheme.roofs[1], polygon([(x - 0.03 * u, eaves), (x + w + 0.03 * u, eaves),
                                                         (x + w * 0.8, ridge), (x + w * 0.2, ridge)]))
    painter.paint("barn door", scheme.door, rect(x + 0.35 * w, base - 0.6 * h, x + 0.65 * w, base))


def _paint_path(painter: _Painter, stage: Stage, scheme: SkyScheme, rng: np.random.Generator) -> None:
    width, height = stage.panorama_width, stage.panorama_height
    xs = np.linspace(-0.05 * width, 1.05 * width, 64)
    waves, shift = rng.uniform(1.0, 3.0), rng.uniform(0.0, 2.0 * np.pi)
    ys = 0.78 * height + 0.03 * height * np.sin(2.0 * np.pi * waves * xs / width + shift)
    painter.paint("path", scheme.path, band(np.stack([xs, ys], axis=1), 0.08 * height))
