"""Writing a toon world to a folder (layout in the package docstring), atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np

from ...atomic import atomic_dir
from ...errors import UserError
from ..lineart import lineart_to_image
from .manifest import GENERATOR
from .world import ToonFrame, ToonWorld

FOLDERS = ("color", "lineart", "regions")


def frame_digits(frames: int) -> int:
    """Digits of the frame numbers in file names (at least 5)."""
    return max(5, len(str(frames - 1)))


def check_target(out: Path) -> None:
    """Refuse to replace anything but nothing, an empty folder or an earlier toon world."""
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"output {out} exists and is not a folder")
    if any(out.iterdir()) and not _is_toon_world(out):
        raise UserError(f"output folder {out} is not empty and holds no toon world; choose another path")


def _is_toon_world(folder: Path) -> bool:
    try:
        return json.loads((folder / "manifest.json").read_text()).get("generator") == GENERATOR
    except (OSError, ValueError, AttributeError):
        return False


def encode_frame(frame: ToonFrame) -> dict[str, bytes]:
    """PNG bytes of a frame's color (RGB), line art (8-bit gray) and region map (16-bit gray)."""
    images = {
        "color": cv2.cvtColor(frame.color, cv2.COLOR_RGB2BGR),
        "lineart": lineart_to_image(frame.lineart),
        "regions": frame.regions.astype(np.uint16),
    }
    return {folder: cv2.imencode(".png", image)[1].tobytes() for folder, image in images.items()}


def write_world(world: ToonWorld, out: str | os.PathLike) -> dict:
    """Write every frame and the manifest of ``world`` to folder ``out``; returns the manifest.

    ``out`` may be missing, an empty folder or an earlier toon world (replaced
    whole); anything else is refused with a :class:`UserError`.
    """
    out = Path(out)
    check_target(out)
    digits = frame_digits(world.frames)
    drawing = world.drawing_indices()
    with atomic_dir(out) as folder:
        try:
            for name in FOLDERS:
                (folder / name).mkdir()
            for t in range(world.frames):
                if t == 0 or drawing[t] != drawing[t - 1]:  # held frames reuse the same bytes
                    encoded = encode_frame(world.render(t))
                for name in FOLDERS:
                    (folder / name / f"{t:0{digits}d}.png").write_bytes(encoded[name])
            manifest = world.manifest()
            manifest["files"] = {name: f"{name}/{{frame:0{digits}d}}.png" for name in FOLDERS}
            (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        except OSError as error:
            raise UserError(f"cannot write {out}: {error.strerror or error}") from None
    return manifest
