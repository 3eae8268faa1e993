"""Polygon primitives for drawing figures: each returns an (n, 2) float array of x, y points.

Coordinates follow the image convention (x right, y down). Angles are in
radians; a limb with angle 0 hangs straight down and a positive angle swings it
toward +x (the way a figure faces).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Point = tuple[float, float]


def ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 20, angle: float = 0.0) -> np.ndarray:
    """An ellipse of ``n`` points, its x axis turned by ``angle``."""
    s = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    points = np.stack([rx * np.cos(s), ry * np.sin(s)], axis=1)
    if angle:
        points = rotate(points, (0.0, 0.0), angle)
    return points + (cx, cy)


def rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """An axis-aligned rectangle from corner (x0, y0) to (x1, y1)."""
    return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], dtype=np.float64)


def rounded_rect(x0: float, y0: float, x1: float, y1: float, radius: float, n: int = 4) -> np.ndarray:
    """A rectangle whose corners are quarter circles of ``radius`` (``n`` points each)."""
    corners = ((x1 - radius, y0 + radius, -0.5), (x1 - radius, y1 - radius, 0.0),
               (x0 + radius, y1 - radius, 0.5), (x0 + radius, y0 + radius, 1.0))
    points = []
    for cx, cy, start in corners:
        for s in np.linspace(start * math.pi, (start + 0.5) * math.pi, n):
            points.append((cx + radius * math.cos(s), cy + radius * math.sin(s)))
    return np.array(points)


def capsule(joint: Point, angle: float, length: float, width: float, n: int = 5) -> np.ndarray:
    """A limb: a bar of ``width`` with round ends, hanging ``length`` from ``joint``, turned by ``angle``."""
    radius = width / 2.0
    direction = np.array([math.sin(angle), math.cos(angle)])
    normal = np.array([math.cos(angle), -math.sin(angle)])
    start = np.asarray(joint) + direction * radius
    end = np.asarray(joint) + direction * (length - radius)
    points = []
    for s in np.linspace(0.0, math.pi, n):  # round end at the far tip
        points.append(end + radius * (math.cos(s) * normal + math.sin(s) * direction))
    for s in np.linspace(math.pi, 2.0 * math.pi, n):  # round end at the joint
        points.append(start + radius * (math.cos(s) * normal + math.sin(s) * direction))
    return np.array(points)


def polygon(points: Sequence[Point]) -> np.ndarray:
    """A polygon through the given points."""
    return np.array(points, dtype=np.float64)


def band(centerline: np.ndarray, width: float) -> np.ndarray:
    """A strip of ``width`` along a polyline (a tail, a road): left side out, right side back."""
    tangent = np.gradient(centerline, axis=0)
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-9)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    return np.concatenate([centerline + normal * width / 2.0, (centerline - normal * width / 2.0)[::-1]])


def rotate(points: np.ndarray, pivot: Point, angle: float) -> np.ndarray:
    """``points`` turned by ``angle`` about ``pivot``; positive angles turn +x toward +y (clockwise on screen)."""
    c, s = math.cos(angle), math.sin(angle)
    shifted = np.asarray(points) - pivot
    return np.stack([c * shifted[:, 0] - s * shifted[:, 1], s * shifted[:, 0] + c * shifted[:, 1]], axis=1) + pivot
