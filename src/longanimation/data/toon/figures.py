"""Figures: the drawable shapes of characters and props, as tables of posed polygons.

A figure is a list of named parts, each painted in one of the paint roles
``main``, ``light``, ``limb``, ``accent``, ``eye``, ``pupil`` (colors come from
:func:`.palette.figure_paints`). Parts are listed back to front. Coordinates
are in figure units: the figure is 1 tall, stands with its feet at y = 0 and
faces +x. All poses are computed once, so posing a figure at render time is one
array lookup.

Character pose table: indices ``0 .. WALK_POSES - 1`` are the walk cycle, then
``POSE_IDLE``, ``POSE_BREATH`` (idle, slightly moved) and ``POSE_JUMP``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .shapes import band, capsule, ellipse, polygon, rect, rotate, rounded_rect

WALK_POSES = 16
POSE_IDLE = WALK_POSES
POSE_BREATH = WALK_POSES + 1
POSE_JUMP = WALK_POSES + 2
BALL_ROLL_POSES = 8

Part = tuple[str, str, np.ndarray]  # name, paint role, polygon


@dataclass(frozen=True)
class Pose:
    """Joint settings of a character: limb swings in radians (+ = forward), bob in figure units (+ = down)."""

    leg: float = 0.0
    arm: float = 0.0
    bob: float = 0.0
    tail: float = 0.0


@dataclass(frozen=True)
class Figure:
    """A shape with its parts and all its poses.

    ``vertices[pose]`` is a (V, 2) array holding every part's polygon;
    ``part_slices[i]`` selects part ``i``'s points in it. ``half_width``,
    ``top`` and ``bottom`` bound every pose (figure units, measured from the
    feet), for on-screen tests.
    """

    template: str
    kind: str  # "character" or "prop"
    part_names: tuple[str, ...]
    part_roles: tuple[str, ...]
    vertices: np.ndarray
    part_slices: tuple[slice, ...]
    half_width: float
    top: float
    bottom: float


def character_poses() -> list[Pose]:
    """The pose list shared by all characters (see the module docstring for its indices)."""
    poses = []
    for k in range(WALK_POSES):
        swing = math.sin(2.0 * math.pi * k / WALK_POSES)
        poses.append(Pose(leg=0.5 * swing, arm=-0.55 * swing, bob=0.015 * abs(swing), tail=0.15 * swing))
    poses.append(Pose())
    poses.append(Pose(arm=0.08, bob=0.01, tail=0.12))
    poses.append(Pose(leg=0.6, arm=2.6, bob=-0.02, tail=-0.3))
    return poses


def _robot(p: Pose) -> list[Part]:
    b = p.bob
    return [
        ("far arm", "limb", capsule((-0.04, -0.62 + b), -p.arm, 0.26, 0.07)),
        ("far leg", "limb", capsule((-0.05, -0.38), -p.leg, 0.38, 0.10)),
        ("body", "main", rounded_rect(-0.17, -0.68 + b, 0.17, -0.33 + b, 0.04)),
        ("chest panel", "light", rect(0.01, -0.60 + b, 0.13, -0.45 + b)),
        ("near leg", "limb", capsule((0.05, -0.38), p.leg, 0.38, 0.10)),
        ("antenna", "limb", rect(-0.012, -0.975 + b, 0.012, -0.90 + b)),
        ("antenna bulb", "accent", ellipse(0.0, -0.965 + b, 0.035, 0.035, n=12)),
        ("head", "main", rounded_rect(-0.15, -0.92 + b, 0.18, -0.68 + b, 0.04)),
        ("eye", "eye", ellipse(0.09, -0.81 + b, 0.05, 0.05)),
        ("pupil", "pupil", ellipse(0.11, -0.81 + b, 0.022, 0.022, n=12)),
        ("mouth", "pupil", rect(0.06, -0.745 + b, 0.16, -0.72 + b)),
        ("near arm", "limb", capsule((0.04, -0.62 + b), p.arm, 0.26, 0.07)),
    ]


def _cat(p: Pose) -> list[Part]:
    b = p.bob
    s = np.linspace(0.0, 1.0, 6)
    tail_line = np.stack([-0.13 - 0.17 * s, -0.40 + b - 0.30 * s * s], axis=1)
    return [
        ("tail", "limb", band(rotate(tail_line, (-0.13, -0.40 + b), p.tail), 0.05)),
        ("far arm", "limb", capsule((-0.03, -0.58 + b), -p.arm, 0.24, 0.065)),
        ("far leg", "limb", capsule((-0.05, -0.36), -p.leg, 0.36, 0.09)),
        ("body", "main", ellipse(0.0, -0.45 + b, 0.15, 0.17)),
        ("belly", "light", ellipse(0.06, -0.43 + b, 0.08, 0.11)),
        ("near leg", "limb", capsule((0.05, -0.36), p.leg, 0.36, 0.09)),
        ("far ear", "main", polygon([(-0.12, -0.82 + b), (-0.01, -0.88 + b), (-0.10, -0.99 + b)])),
        ("near ear", "main", polygon([(0.01, -0.88 + b), (0.12, -0.83 + b), (0.07, -0.99 + b)])),
        ("head", "main", ellipse(0.02, -0.76 + b, 0.15, 0.14)),
        ("muzzle", "light", ellipse(0.12, -0.72 + b, 0.06, 0.045, n=14)),
        ("nose", "accent", polygon([(0.155, -0.752 + b), (0.19, -0.752 + b), (0.172, -0.728 + b)])),
        ("eye", "eye", ellipse(0.08, -0.80 + b, 0.035, 0.042, n=14)),
        ("pupil", "pupil", ellipse(0.094, -0.80 + b, 0.017, 0.025, n=10)),
        ("near arm", "limb", capsule((0.03, -0.58 + b), p.arm, 0.24, 0.065)),
    ]


def _bear(p: Pose) -> list[Part]:
    b = p.bob
    return [
        ("far arm", "limb", capsule((-0.04, -0.58 + b), -p.arm, 0.25, 0.08)),
        ("far leg", "limb", capsule((-0.06, -0.34), -p.leg, 0.34, 0.11)),
        ("tail", "light", ellipse(-0.18, -0.40 + b, 0.04, 0.04, n=10)),
        ("body", "main", ellipse(0.0, -0.44 + b, 0.18, 0.20)),
        ("belly", "light", ellipse(0.07, -0.42 + b, 0.09, 0.13)),
        ("near leg", "limb", capsule((0.06, -0.34), p.leg, 0.34, 0.11)),
        ("far ear", "main", ellipse(-0.08, -0.90 + b, 0.05, 0.05, n=12)),
        ("near ear", "main", ellipse(0.06, -0.92 + b, 0.05, 0.05, n=12)),
        ("head", "main", ellipse(0.02, -0.78 + b, 0.15, 0.14)),
        ("muzzle", "light", ellipse(0.12, -0.73 + b, 0.07, 0.05, n=14)),
        ("nose", "pupil", ellipse(0.17, -0.755 + b, 0.025, 0.018, n=10)),
        ("eye", "eye", ellipse(0.07, -0.81 + b, 0.03, 0.038, n=14)),
        ("pupil", "pupil", ellipse(0.082, -0.81 + b, 0.015, 0.022, n=10)),
        ("near arm", "limb", capsule((0.04, -0.58 + b), p.arm, 0.25, 0.08)),
    ]


def _chick(p: Pose) -> list[Part]:
    b = p.bob
    shoulder = (-0.02, -0.56 + b)
    wing = ellipse(-0.02, -0.45 + b, 0.07, 0.13)
    return [
        ("far wing", "limb", rotate(wing, shoulder, 0.4 * p.arm - 0.1)),
        ("far leg", "accent", capsule((-0.05, -0.22), -p.leg, 0.22, 0.04, n=4)),
        ("near leg", "accent", capsule((0.05, -0.22), p.leg, 0.22, 0.04, n=4)),
        ("crest", "accent", polygon([(-0.07, -0.74 + b), (-0.05, -0.93 + b), (0.0, -0.79 + b),
                                     (0.04, -0.96 + b), (0.06, -0.76 + b)])),
        ("body", "main", ellipse(0.0, -0.50 + b, 0.22, 0.29, n=28)),
        ("belly", "light", ellipse(0.07, -0.42 + b, 0.13, 0.17)),
        ("beak", "accent", polygon([(0.19, -0.63 + b), (0.31, -0.585 + b), (0.19, -0.54 + b)])),
        ("eye", "eye", ellipse(0.10, -0.65 + b, 0.04, 0.046, n=14)),
        ("pupil", "pupil", ellipse(0.115, -0.65 + b, 0.019, 0.027, n=10)),
        ("near wing", "limb", rotate(wing + (0.03, 0.0), (0.01, -0.56 + b), -0.4 * p.arm + 0.1)),
    ]


CHARACTER_TEMPLATES: dict[str, Callable[[Pose], list[Part]]] = {
    "robot": _robot,
    "cat": _cat,
    "bear": _bear,
    "chick": _chick,
}
"""Character shapes by name (the name is used in captions)."""


def _ball(roll: float) -> list[Part]:
    return [
        ("ball", "main", ellipse(0.0, -0.5, 0.5, 0.5, n=24)),
        ("stripe", "light", ellipse(0.0, -0.5, 0.49, 0.16, n=20, angle=roll)),
    ]


def _bush() -> list[Part]:
    return [
        ("back leaves", "limb", ellipse(0.0, -0.62, 0.55, 0.38)),
        ("left leaves", "main", ellipse(-0.55, -0.38, 0.45, 0.38)),
        ("right leaves", "main", ellipse(0.55, -0.38, 0.45, 0.38)),
        ("front leaves", "light", ellipse(0.05, -0.32, 0.5, 0.32)),
    ]


def _mailbox() -> list[Part]:
    return [
        ("post", "limb", rect(-0.05, -0.56, 0.05, 0.0)),
        ("flag", "accent", rect(0.15, -0.98, 0.2, -0.7)),
        ("box", "main", rounded_rect(-0.24, -0.88, 0.24, -0.54, 0.08)),
        ("slot", "pupil", rect(-0.13, -0.75, 0.13, -0.71)),
    ]


def _lamp_post() -> list[Part]:
    return [
        ("pole", "main", rect(-0.022, -0.86, 0.022, -0.06)),
        ("base", "limb", rounded_rect(-0.07, -0.10, 0.07, 0.0, 0.02)),
        ("lamp", "limb", polygon([(-0.09, -0.86), (0.09, -0.86), (0.06, -1.0), (-0.06, -1.0)])),
        ("light", "eye", rect(-0.045, -0.965, 0.045, -0.885)),
    ]


SCENERY_TEMPLATES: dict[str, Callable[[], list[Part]]] = {
    "bush": _bush,
    "mailbox": _mailbox,
    "lamp post": _lamp_post,
}
"""Static foreground props by name."""


def _figure(template: str, kind: str, posed_parts: list[list[Part]]) -> Figure:
    names = tuple(name for name, _, _ in posed_parts[0])
    roles = tuple(role for _, role, _ in posed_parts[0])
    sizes = [len(points) for _, _, points in posed_parts[0]]
    for parts in posed_parts:
        if [len(points) for _, _, points in parts] != sizes:
            raise ValueError(f"{template}: every pose must give every part the same number of points")
    vertices = np.stack([np.concatenate([points for _, _, points in parts]) for parts in posed_parts])
    vertices = vertices.astype(np.float32)
    vertices.flags.writeable = False
    bounds = np.cumsum([0, *sizes])
    slices = tuple(slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]))
    return Figure(
        template=template,
        kind=kind,
        part_names=names,
        part_roles=roles,
        vertices=vertices,
        part_slices=slices,
        half_width=float(np.abs(vertices[..., 0]).max()),
        top=float(-vertices[..., 1].min()),
        bottom=float(vertices[..., 1].max()),
    )


@functools.cache
def character_figure(template: str) -> Figure:
    """A character shape with its whole pose table."""
    build = CHARACTER_TEMPLATES[template]
    return _figure(template, "character", [build(pose) for pose in character_poses()])


@functools.cache
def ball_figure() -> Figure:
    """A striped ball (1 across), one pose per eighth of a half turn of its stripe."""
    rolls = [math.pi * k / BALL_ROLL_POSES for k in range(BALL_ROLL_POSES)]
    return _figure("ball", "prop", [_ball(roll) for roll in rolls])


@functools.cache
def scenery_figure(template: str) -> Figure:
    """A static foreground prop (a single pose)."""
    return _figure(template, "prop", [SCENERY_TEMPLATES[template]()])
