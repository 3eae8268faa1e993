"""Ground truth for color consistency: region-id maps and what each region is.

Region maps are single-channel PNGs (16-bit, pixel value = region id), one per
ground-truth frame in natural file order, as a toon world's ``regions/``
folder holds them. A manifest (the toon world's ``manifest.json``) names each
region's object and part and gives its flat color; only paint regions
(``parts``) are evaluated, outlines are ink and left out. Without a manifest
every id found in the maps is its own object and its reference color is the
mean ground-truth color inside it, frame by frame.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..data.video_io import list_image_files
from ..errors import UserError


@dataclass(frozen=True)
class Region:
    """One evaluated region: its object, its part name and its flat RGB color (None: use ground truth)."""

    id: int
    object_id: int
    object_name: str
    part_name: str
    color: tuple[int, int, int] | None


@dataclass
class RegionTruth:
    """Region-id maps (T, H, W) and the regions to evaluate, in increasing id order."""

    maps: np.ndarray
    regions: list[Region]
    source: str


def read_region_maps(folder: str | os.PathLike) -> np.ndarray:
    """Read a folder of single-channel integer PNG region maps into (T, H, W) int32."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"region-id folder {folder} does not exist or is not a folder")
    files = [file for file in list_image_files(folder) if file.suffix.lower() == ".png"]
    if not files:
        raise UserError(f"region-id folder {folder} holds no PNG region maps")
    maps = []
    for file in files:
        image = read_region_map(file)
        if maps and image.shape != maps[0].shape:
            raise UserError(f"region maps of {folder} differ in size: {files[0].name} and {file.name}")
        maps.append(image)
    return np.stack(maps)


def read_region_map(file: str | os.PathLike) -> np.ndarray:
    """Read one single-channel integer PNG region map into (H, W) int32."""
    image = cv2.imread(str(file), cv2.IMREAD_UNCHANGED) if Path(file).is_file() else None
    if image is None or image.ndim != 2 or image.dtype not in (np.uint8, np.uint16):
        raise UserError(f"{file} is not a single-channel 8- or 16-bit PNG region-id map")
    return image.astype(np.int32)


def read_manifest(path: str | os.PathLike) -> list[Region]:
    """The paint regions of a toon manifest: ``objects[*].parts[*]`` with ``id``, ``name`` and ``color``."""
    path = Path(path)
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"manifest {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"cannot read manifest {path}: {error}") from None
    return manifest_regions(manifest, f"manifest {path}")


def manifest_regions(manifest: object, where: str = "manifest") -> list[Region]:
    """The paint regions of a toon manifest dict (:meth:`ToonWorld.manifest`), in increasing id order."""
    objects = manifest.get("objects") if isinstance(manifest, dict) else None
    if not isinstance(objects, list):
        raise UserError(f"{where} has no 'objects' list")
    regions = []
    try:
        for obj in objects:
            for part in obj["parts"]:
                color = tuple(int(c) for c in part["color"])
                if len(color) != 3:
                    raise ValueError(f"color {part['color']}")
                regions.append(Region(int(part["id"]), int(obj["id"]), str(obj["name"]), str(part["name"]), color))
    except (KeyError, TypeError, ValueError) as error:
        raise UserError(f"{where}: malformed object or part ({error})") from None
    return sorted(regions, key=lambda region: region.id)


def regions_from_maps(maps: np.ndarray) -> list[Region]:
    """Every id in the maps as its own object (no manifest), reference color from the ground truth."""
    return [Region(int(i), int(i), f"region {i}", f"region {i}", None) for i in np.unique(maps)]


def load_region_truth(ids: str | os.PathLike, manifest: str | os.PathLike | None) -> RegionTruth:
    """Read ``ids``; the manifest defaults to ``manifest.json`` next to the ``ids`` folder when that exists."""
    maps = read_region_maps(ids)
    if manifest is None and (Path(ids).parent / "manifest.json").is_file():
        manifest = Path(ids).parent / "manifest.json"
    if manifest is None:
        return RegionTruth(maps, regions_from_maps(maps), "mean ground-truth color of each region (no manifest)")
    return RegionTruth(maps, read_manifest(manifest), f"flat part colors of manifest {manifest}")
