"""Real-animation validation shots built offline from hand-drawn game sprites.

    python benchmarks/real_shots.py --out DIR [--split test|train|all] [--seed 0] [--arcade WHEEL_OR_DIR]

Sources (read in place, nothing is installed or downloaded by this script):

- ``wesnoth``: Debian ``wesnoth-1.16-data``. Hand-drawn unit animations
  (``data/core/images/units/**/NAME-ANIM-N.png`` frame sequences) and the
  painted story landscapes (``story/*.jpg``) and world map (``maps/background.jpg``).
- ``pingus``: Debian ``pingus-data``. Sprite sheets described by ``*.sprite``
  files (``(array COLS ROWS) (size W H) (position X Y) (speed MS)``), painted
  backdrops from ``textures/`` and the tutorial world map.
- ``supertux``: Debian ``supertux-data``. Creature animations from
  ``images/creatures/**.sprite`` (``(action (name ..) (fps N) (images ..))``)
  and the opaque pictures of ``images/background/``.
- ``arcade``: optional, the CC0 (Kenney) images of the PyPI ``arcade`` wheel
  (``pip download --no-deps arcade``), read from the wheel's zip or from an
  installed package: ``animated_characters`` and ``enemies`` frame sequences,
  ``backgrounds/abstract_*.jpg`` and ``stars.png``. The ansimuz parallax sets
  in the wheel (not CC0) are not used.

Split, by source package: **test = wesnoth + pingus**, **train = supertux +
arcade**. Every sprite and background of a shot comes from sources of the
shot's split; :func:`check_split` refuses anything else, so a test shot never
shows a picture a model could have been trained on from the train sources.

A shot (:class:`Shot`) is a painted background, scaled to cover the frame plus
room for a slow camera pan (horizontal on wide pictures, vertical on tall ones,
sometimes none), and 2-5 sprite instances (sometimes the same sprite twice)
that stand in the world (and leave the frame as the camera moves on), cross
it (entering after the keyframe, leaving, sometimes coming back from the
other side), or walk with the camera following them. Each sprite plays its
real frame sequence, looped, at its own frame rate. Timing is that of cel
animation: stretches of the shot are on ones, twos or threes, and a frame on
twos/threes repeats its drawing exactly (camera, positions and sprite
frames all). Sprite pixels are alpha-blended; a pixel belongs to a sprite's
region when its alpha is at least 128, the front-most sprite winning.
Everything is a function of ``(seed, split, shot index)`` and the source files.

Per shot folder (the layout of ``longanimation toon generate``):

- ``color/00000.png ...``: RGB ground truth;
- ``lineart/00000.png ...``: black-on-white line art of each color frame,
  :func:`longanimation.data.lineart_extraction.extract_lineart` (default method);
- ``regions/00000.png ...``: 16-bit region-id maps, 0 the background, 1..N the
  sprite instances (back to front in the manifest);
- ``manifest.json``: generator, seed, split, sources, frames, size, fps,
  caption, ``drawing_index`` and ``held_stretches`` (as toon), ``objects``
  (background + sprite instances, each with one paint part of the same id,
  ``visible_frames`` and the source sprite), ``events`` (``enters_late``,
  ``returns``, ``same_shape``).

``longanimation evaluate --ids SHOT/regions`` reads the manifest next to the
maps; it compares each part with the part's ``color``. Sprites and painted
backgrounds are not flat, so that color is the mean ground-truth color of the
region over the whole shot (``color_is_mean: true``): the ΔE it reports for a
region includes how much the region's own mean color changes as the sprite
animates (``color_spread``, ΔE RMS of the per-frame means around it, is given
per part to judge that).

Held frames are hard links to the first frame of their drawing (disk space),
each shot is written to a temporary folder renamed when complete, and shots
already built (same name, seed and generator version) are skipped.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import posixpath
import re
import shutil
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

GENERATOR = "longanimation.benchmarks.real_shots"
VERSION = "1"
DEFAULT_OUT = Path("/work/real-shots")
FPS = 24

SPLIT_OF_SOURCE = {"wesnoth": "test", "pingus": "test", "supertux": "train", "arcade": "train"}
PACKAGE_OF_SOURCE = {
    "wesnoth": "wesnoth-1.16-data",
    "pingus": "pingus-data",
    "supertux": "supertux-data",
    "arcade": "arcade (PyPI wheel)",
}
DEFAULT_ROOTS = {
    "wesnoth": Path("/usr/share/games/wesnoth/1.16/data/core/images"),
    "pingus": Path("/usr/share/games/pingus/data/images"),
    "supertux": Path("/usr/share/games/supertux2/images"),
}
ARCADE_PREFIX = "arcade/resources/assets/images/"

# (sources: sprites and backgrounds come from these, the first gives the background; width, height, frames)
SHOT_SPECS = {
    "test": [
        (("wesnoth",), 1280, 720, 120),
        (("pingus",), 1280, 720, 100),
        (("wesnoth",), 256, 256, 120),
        (("pingus",), 256, 256, 120),
        (("wesnoth",), 384, 256, 240),
        (("pingus",), 320, 256, 300),
        (("wesnoth",), 512, 288, 400),
        (("wesnoth", "pingus"), 256, 256, 500),
        (("pingus", "wesnoth"), 448, 256, 200),
        (("wesnoth",), 256, 320, 300),
        (("wesnoth",), 640, 360, 160),
    ],
    "train": [
        (("supertux",), 256, 256, 200),
        (("supertux", "arcade"), 384, 256, 200),
        (("supertux",), 512, 288, 300),
        (("arcade", "supertux"), 256, 256, 150),
        (("supertux",), 320, 256, 400),
        (("supertux", "arcade"), 640, 360, 120),
    ],
}

WALK_WORDS = ("walk", "move", "moving", "run", "fly", "swim", "roll", "slide", "bounce", "jump")
SKIP_WORDS = ("die", "death", "dying", "dead", "melt", "squish", "splat", "conveyorbelt")  # not loops, or tiles
WESNOTH_SKIP = SKIP_WORDS + ("teleport", "leading", "level", "shadow", "halo", "mask")


class SourceMissing(Exception):
    """A source's files are not where they should be (package not installed)."""


# ---------------------------------------------------------------- file stores


class DirStore:
    """Files under a folder, by posix path relative to it."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self._names: list[str] | None = None

    def exists(self) -> bool:
        return self.root.is_dir()

    def names(self) -> list[str]:
        if self._names is None:
            found = []
            for folder, _, files in os.walk(self.root):
                rel = Path(folder).relative_to(self.root).as_posix()
                found += [name if rel == "." else f"{rel}/{name}" for name in files]
            self._names = sorted(found)
        return self._names

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()


class ZipStore:
    """Members of a zip file (a wheel) under ``prefix``, by path relative to the prefix."""

    def __init__(self, path: str | os.PathLike, prefix: str = ""):
        self.path, self.prefix = Path(path), prefix
        self._zip: zipfile.ZipFile | None = None

    def exists(self) -> bool:
        return self.path.is_file() and zipfile.is_zipfile(self.path)

    def _archive(self) -> zipfile.ZipFile:
        if self._zip is None:
            self._zip = zipfile.ZipFile(self.path)
        return self._zip

    def names(self) -> list[str]:
        return sorted(
            info.filename[len(self.prefix):]
            for info in self._archive().infolist()
            if info.filename.startswith(self.prefix) and not info.is_dir()
        )

    def read(self, name: str) -> bytes:
        return self._archive().read(self.prefix + name)


def decode_rgba(data: bytes) -> np.ndarray:
    """Image bytes -> (H, W, 4) uint8 RGBA (palette transparency honoured)."""
    with Image.open(io.BytesIO(data)) as image:
        return np.array(image.convert("RGBA"))


# ---------------------------------------------------------------- catalogs


@dataclass(frozen=True)
class FrameRef:
    file: str
    box: tuple[int, int, int, int] | None = None  # x, y, w, h in a sprite sheet


@dataclass(frozen=True)
class SpriteAnim:
    source: str
    name: str
    frames: tuple[FrameRef, ...]
    fps: float
    faces_left: bool = False

    @property
    def walks(self) -> bool:
        return any(word in self.name.lower() for word in WALK_WORDS)


@dataclass
class Source:
    """The sprites and backgrounds one package offers."""

    name: str
    split: str
    store: DirStore | ZipStore
    sprites: list[SpriteAnim]
    backgrounds: list[str]
    _cache: dict = field(default_factory=dict, repr=False)

    def sprite_frames(self, sprite: SpriteAnim) -> list[np.ndarray]:
        """RGBA frames of ``sprite``, padded to one size (bottom-centred), cropped to their joint alpha box."""
        key = ("sprite", sprite.name)
        if key not in self._cache:
            sheets: dict[str, np.ndarray] = {}
            frames = []
            for ref in sprite.frames:
                if ref.file not in sheets:
                    sheets[ref.file] = decode_rgba(self.store.read(ref.file))
                image = sheets[ref.file]
                if ref.box is not None:
                    x, y, w, h = ref.box
                    image = image[y:y + h, x:x + w]
                frames.append(image)
            height = max(f.shape[0] for f in frames)
            width = max(f.shape[1] for f in frames)
            padded = []
            for f in frames:
                canvas = np.zeros((height, width, 4), np.uint8)
                left = (width - f.shape[1]) // 2
                canvas[height - f.shape[0]:, left:left + f.shape[1]] = f
                padded.append(canvas)
            stack = np.stack(padded)
            solid = (stack[..., 3] >= 128).any(axis=0)
            if not solid.any():
                self._cache[key] = []
            else:
                rows, cols = np.flatnonzero(solid.any(axis=1)), np.flatnonzero(solid.any(axis=0))
                self._cache[key] = list(stack[:, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])
        return self._cache[key]

    def background(self, name: str) -> np.ndarray | None:
        """RGB picture ``name``, or None when it is not an opaque picture of at least 200 px a side."""
        key = ("background", name)
        if key not in self._cache:
            rgba = decode_rgba(self.store.read(name))
            opaque = (rgba[..., 3] >= 250).mean() >= 0.995
            big = min(rgba.shape[:2]) >= 200
            self._cache[key] = np.ascontiguousarray(rgba[..., :3]) if opaque and big else None
        return self._cache[key]


def parse_sexpr(text: str) -> list:
    """Parse the s-expression files of pingus and supertux sprites into nested lists (strings keep no quotes)."""
    tokens = re.findall(r'\(|\)|"(?:[^"\\]|\\.)*"|;[^\n]*|[^\s()";]+', text)
    stack: list[list] = [[]]
    for token in tokens:
        if token.startswith(";"):
            continue
        if token == "(":
            stack.append([])
        elif token == ")":
            if len(stack) > 1:
                done = stack.pop()
                stack[-1].append(done)
        else:
            stack[-1].append(token[1:-1] if token.startswith('"') else token)
    while len(stack) > 1:
        done = stack.pop()
        stack[-1].append(done)
    return stack[0]


def _fields(node: list) -> dict[str, list]:
    return {item[0]: item[1:] for item in node if isinstance(item, list) and item and isinstance(item[0], str)}


def _number(value, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def catalog_wesnoth(store: DirStore | ZipStore) -> Source:
    """Unit animations: files ``DIR/STEM[-]N.png`` with at least 3 consecutive frame numbers."""
    groups: dict[tuple[str, str], dict[int, str]] = {}
    pattern = re.compile(r"^(?P<stem>.*?\D)-?(?P<n>\d+)\.png$")
    for name in store.names():
        if not name.startswith("units/"):
            continue
        folder, file = posixpath.split(name)
        match = pattern.match(file)
        if match and not any(word in match["stem"].lower() for word in WESNOTH_SKIP):
            groups.setdefault((folder, match["stem"].rstrip("-")), {})[int(match["n"])] = name
    sprites = []
    for (folder, stem), numbered in sorted(groups.items()):
        start = min(numbered)
        run = []
        while start + len(run) in numbered:
            run.append(numbered[start + len(run)])
        if len(run) >= 3:
            sprites.append(SpriteAnim("wesnoth", f"{folder}/{stem}", tuple(FrameRef(f) for f in run), 8.0))
    backgrounds = [n for n in store.names() if n.startswith("story/") and n.endswith(".jpg")]
    backgrounds += [n for n in store.names() if n == "maps/background.jpg"]
    return Source("wesnoth", SPLIT_OF_SOURCE["wesnoth"], store, _loops(sprites), backgrounds)


PINGUS_SPRITE_DIRS = ("pingus/", "traps/", "worldobjs/", "exits/", "entrances/", "hotspots/", "other/")


def catalog_pingus(store: DirStore | ZipStore) -> Source:
    """Sprite sheets of ``*.sprite`` files with an ``array`` of at least 3 frames; painted backdrops."""
    sprites = []
    names = set(store.names())
    for name in sorted(names):
        if not (name.endswith(".sprite") and name.startswith(PINGUS_SPRITE_DIRS)):
            continue
        parsed = parse_sexpr(store.read(name).decode("utf-8", "replace"))
        if not parsed or not isinstance(parsed[0], list):
            continue
        spec = _fields(parsed[0][1:])
        if not {"image", "array", "size"} <= spec.keys():
            continue
        image = posixpath.normpath(posixpath.join(posixpath.dirname(name), spec["image"][0]))
        cols, rows = (int(_number(v, 0)) for v in spec["array"][:2])
        width, height = (int(_number(v, 0)) for v in spec["size"][:2])
        x0, y0 = (int(_number(v, 0)) for v in (spec.get("position") or [0, 0])[:2])
        if image not in names or cols * rows < 3 or width <= 0 or height <= 0:
            continue
        boxes = tuple(
            FrameRef(image, (x0 + c * width, y0 + r * height, width, height)) for r in range(rows) for c in range(cols)
        )
        speed = _number((spec.get("speed") or [100])[0], 100.0)
        fps = 1000.0 / speed if speed > 0 else 10.0
        sprite_name = name[: -len(".sprite")]
        sprites.append(SpriteAnim("pingus", sprite_name, boxes, fps, faces_left="left" in sprite_name.rsplit("/", 1)[-1]))
    backgrounds = [
        n for n in sorted(names)
        if (n.startswith("textures/") and n.endswith((".jpg", ".png")) and "anim" not in n) or n == "worldmaps/tutorial_layer0.jpg"
    ]
    return Source("pingus", SPLIT_OF_SOURCE["pingus"], store, _loops(sprites), backgrounds)


def catalog_supertux(store: DirStore | ZipStore) -> Source:
    """Creature actions of ``images/creatures/**.sprite`` with at least 3 images; ``images/background`` pictures."""
    sprites = []
    names = set(store.names())
    for name in sorted(names):
        if not (name.startswith("creatures/") and name.endswith(".sprite")) or "powerups" in name:  # hats alone
            continue
        parsed = parse_sexpr(store.read(name).decode("utf-8", "replace"))
        if not parsed or not isinstance(parsed[0], list):
            continue
        folder = posixpath.dirname(name)
        for action in parsed[0][1:]:
            if not (isinstance(action, list) and action and action[0] == "action"):
                continue
            spec = _fields(action[1:])
            files = [posixpath.normpath(posixpath.join(folder, f)) for f in spec.get("images", []) if isinstance(f, str)]
            if len(files) < 3 or not all(f in names for f in files):
                continue
            action_name = str((spec.get("name") or ["default"])[0])
            fps = _number((spec.get("fps") or [10])[0], 10.0)
            sprites.append(
                SpriteAnim(
                    "supertux", f"{name[:-len('.sprite')]}:{action_name}", tuple(FrameRef(f) for f in files),
                    fps if fps > 0 else 10.0, faces_left="left" in action_name,
                )
            )
    backgrounds = [n for n in sorted(names) if n.startswith("background/") and n.endswith((".jpg", ".png"))]
    return Source("supertux", SPLIT_OF_SOURCE["supertux"], store, _loops(sprites), backgrounds)


def catalog_arcade(store: DirStore | ZipStore) -> Source:
    """Kenney (CC0) frame sequences ``NAME_ACTIONN.png`` (at least 3 frames) and the CC0 backgrounds."""
    groups: dict[str, dict[int, str]] = {}
    pattern = re.compile(r"^(?P<stem>.*?\D)(?P<n>\d+)\.png$")
    for name in store.names():
        if name.startswith(("animated_characters/", "enemies/")):
            match = pattern.match(name)
            if match:
                groups.setdefault(match["stem"], {})[int(match["n"])] = name
    sprites = []
    for stem, numbered in sorted(groups.items()):
        start = min(numbered)
        run = []
        while start + len(run) in numbered:
            run.append(numbered[start + len(run)])
        if len(run) >= 3:
            sprites.append(SpriteAnim("arcade", stem.rstrip("_"), tuple(FrameRef(f) for f in run), 10.0))
    wanted = ("backgrounds/abstract_1.jpg", "backgrounds/abstract_2.jpg", "backgrounds/stars.png")
    backgrounds = [n for n in wanted if n in set(store.names())]
    return Source("arcade", SPLIT_OF_SOURCE["arcade"], store, _loops(sprites), backgrounds)


def _loops(sprites: list[SpriteAnim]) -> list[SpriteAnim]:
    return [s for s in sprites if not any(word in s.name.lower() for word in SKIP_WORDS)]


CATALOGS = {"wesnoth": catalog_wesnoth, "pingus": catalog_pingus, "supertux": catalog_supertux, "arcade": catalog_arcade}


def arcade_store(location: str | os.PathLike | None) -> DirStore | ZipStore | None:
    """The arcade images: a wheel file, a folder holding ``arcade-*.whl``, or the installed package (found, not imported)."""
    if location is None:
        spec = importlib.util.find_spec("arcade")
        if spec is None or not spec.submodule_search_locations:
            return None
        return DirStore(Path(next(iter(spec.submodule_search_locations))) / "resources" / "assets" / "images")
    location = Path(location)
    if location.is_dir():
        wheels = sorted(location.glob("arcade-*.whl"))
        if wheels:
            return ZipStore(wheels[-1], ARCADE_PREFIX)
        if (location / "resources" / "assets" / "images").is_dir():
            return DirStore(location / "resources" / "assets" / "images")
        return DirStore(location)
    return ZipStore(location, ARCADE_PREFIX)


def open_source(name: str, store: DirStore | ZipStore | None = None) -> Source:
    """Catalog source ``name`` from ``store`` (default: its Debian package's folder); SourceMissing if absent."""
    if store is None:
        store = DirStore(DEFAULT_ROOTS[name])
    if not store.exists():
        where = getattr(store, "root", getattr(store, "path", "?"))
        raise SourceMissing(f"{PACKAGE_OF_SOURCE[name]} is not installed (no {where}): apt-get install {PACKAGE_OF_SOURCE[name]}"
                            if name in DEFAULT_ROOTS else f"{PACKAGE_OF_SOURCE[name]} not found at {where}")
    source = CATALOGS[name](store)
    if not source.sprites or not source.backgrounds:
        raise SourceMissing(f"{PACKAGE_OF_SOURCE[name]} at {getattr(store, 'root', store)} holds no usable sprites or backgrounds")
    return source


# ---------------------------------------------------------------- shot plans


def check_split(split: str, sources: list[Source]) -> None:
    """Refuse a shot of ``split`` that would use a source of another split."""
    for source in sources:
        if source.split != split:
            raise ValueError(f"source {source.name} belongs to the {source.split} split and cannot appear in a {split} shot")


@dataclass
class Actor:
    """One sprite instance: id (region id and depth order), its scaled frames and its path."""

    id: int
    sprite: SpriteAnim
    frames: list[np.ndarray]  # scaled RGBA, already mirrored when it walks the other way
    mirrored: list[np.ndarray]
    scale: int
    ground: float  # world y of the feet
    anchor: str  # "world" or "screen"
    keys: list[tuple[float, float]]  # (tau, x of the centre) in its anchor's coordinates
    phase: float
    kind: str

    def world_x(self, shot: Shot, tau: float) -> tuple[float, int]:
        """World x of the centre and walking direction (-1, 0, 1) at time ``tau``."""
        times = [k[0] for k in self.keys]
        xs = [k[1] for k in self.keys]

        def at(u: float) -> float:
            x = float(np.interp(u, times, xs))
            return x + shot.camera_at(u)[0] if self.anchor == "screen" else x

        x = at(tau)
        return x, int(np.sign(round(at(tau + 0.5) - x, 3)))


@dataclass
class Shot:
    name: str
    split: str
    seed: int
    width: int
    height: int
    frames: int
    sources: list[str]
    background_name: str
    background_source: str
    background: np.ndarray  # scaled world picture
    camera: tuple[tuple[float, float], tuple[float, float]]  # top-left at tau=0 and at the end
    actors: list[Actor]
    drawing_index: np.ndarray
    drawing_tau: np.ndarray
    held_stretches: list[dict]
    caption: str

    def camera_at(self, tau: float) -> tuple[float, float]:
        return camera_at(self.camera, self.frames, tau)


def camera_at(camera, frames: int, tau: float) -> tuple[float, float]:
    """Top-left corner of the view at time ``tau`` of a shot of ``frames`` whose camera goes from
    ``camera[0]`` to ``camera[1]``."""
    (x0, y0), (x1, y1) = camera
    u = min(max(tau / max(frames - 1, 1), 0.0), 1.0)
    u = u * u * (3 - 2 * u)  # ease in and out
    return x0 + (x1 - x0) * u, y0 + (y1 - y0) * u


def screen_pans(manifest: dict) -> np.ndarray:
    """(frames, 2) whole-pixel motion (dx, dy) of the background on screen from frame 0 to each frame,
    as :func:`render_drawing` draws it (a drawing shows at the time of its first frame)."""
    index = np.asarray(manifest["drawing_index"])
    first = {}
    for t, d in enumerate(index.tolist()):
        first.setdefault(d, t)
    camera, frames = manifest["setting"]["camera"], manifest["frames"]
    corners = np.array([[round(v) for v in camera_at(camera, frames, first[d])] for d in index.tolist()])
    return corners[0] - corners


def timing(frames: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Drawing index per frame (stretches on ones, twos or threes), the time each drawing shows, held stretches."""
    index = np.zeros(frames, np.int64)
    starts: list[int] = []
    stretches = []
    t = 0
    while t < frames:
        length = int(rng.integers(20, 81))
        hold = int(rng.choice([1, 2, 3], p=[0.35, 0.45, 0.2]))
        end = min(frames, t + length)
        for u in range(t, end):
            if (u - t) % hold == 0:
                starts.append(u)
            index[u] = len(starts) - 1
        if hold > 1:
            stretches.append({"start": t, "end": end - 1, "hold": hold})
        t = end
    return index, np.asarray(starts, np.float64), stretches


def _upscale(image: np.ndarray, factor: int) -> np.ndarray:
    return image if factor == 1 else np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def _pick_background(sources: list[Source], rng: np.random.Generator, min_side: int) -> tuple[Source, str, np.ndarray]:
    first = sources[0]
    order = rng.permutation(len(first.backgrounds))
    fallback = None
    for i in order:
        picture = first.background(first.backgrounds[i])
        if picture is not None and max(picture.shape[:2]) >= min_side:
            return first, first.backgrounds[i], picture
        if picture is not None and fallback is None:
            fallback = first, first.backgrounds[i], picture
    if fallback is not None:
        return fallback
    for source in sources[1:]:
        for name in source.backgrounds:
            picture = source.background(name)
            if picture is not None:
                return source, name, picture
    raise SourceMissing(f"no opaque background of at least 200 px in {', '.join(s.name for s in sources)}")


def plan_shot(
    name: str, split: str, sources: list[Source], width: int, height: int, frames: int, seed: int,
    actors: int | None = None,
) -> Shot:
    """Choose background, camera, sprites and their paths for one shot (deterministic for the seed)."""
    check_split(split, sources)
    rng = np.random.default_rng([seed, {"test": 1, "train": 2}.get(split, 3), *map(ord, name)])
    bg_source, bg_name, picture = _pick_background(sources, rng, max(width, height) // 2)
    ph, pw = picture.shape[:2]
    pan_kind = rng.choice(["none", "pan", "pan", "pan"])
    horizontal = pw / ph >= width / height
    travel = 0.0 if pan_kind == "none" else float(rng.uniform(0.15, 0.6)) * (width if horizontal else height)
    if horizontal:
        scale = max((height * float(rng.uniform(1.0, 1.08))) / ph, (width + travel) / pw)
    else:
        scale = max((width * float(rng.uniform(1.0, 1.08))) / pw, (height + travel) / ph)
    size = (max(width, int(np.ceil(pw * scale))), max(height, int(np.ceil(ph * scale))))
    world = cv2.resize(picture, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    room_x, room_y = size[0] - width, size[1] - height
    direction = 1 if rng.random() < 0.5 else -1
    if horizontal:
        y = float(rng.uniform(0, room_y))
        start = float(rng.uniform(0, room_x - travel)) if room_x > travel else 0.0
        ends = (start, start + travel) if direction > 0 else (start + travel, start)
        camera = ((ends[0], y), (ends[1], y))
    else:
        x = float(rng.uniform(0, room_x))
        start = float(rng.uniform(0, room_y - travel)) if room_y > travel else 0.0
        ends = (start, start + travel) if direction > 0 else (start + travel, start)
        camera = ((x, ends[0]), (x, ends[1]))
    drawing_index, drawing_tau, stretches = timing(frames, rng)
    shot = Shot(name, split, seed, width, height, frames, [s.name for s in sources], bg_name, bg_source.name, world,
                camera, [], drawing_index, drawing_tau, stretches, "")
    count = actors if actors is not None else int(rng.integers(2, 6))
    shot.actors = _plan_actors(shot, sources, count, rng, pan=travel > 0 and horizontal)
    shot.caption = _caption(shot)
    return shot


def _plan_actors(shot: Shot, sources: list[Source], count: int, rng: np.random.Generator, pan: bool) -> list[Actor]:
    pool = [(source, sprite) for source in sources for sprite in source.sprites]
    walkers = [entry for entry in pool if entry[1].walks] or pool
    kinds = ["stand"] + [str(k) for k in rng.choice(["stand", "cross", "cross", "return", "follow"], size=count - 1)]
    if not pan:
        kinds = ["cross" if k == "follow" else k for k in kinds]
    planned = []
    repeated = False
    last = shot.frames - 1
    for kind in kinds:
        choices = walkers if kind != "stand" else pool
        for _ in range(20):
            if planned and not repeated and rng.random() < 0.12:  # the same sprite again: two look-alike instances
                repeated = True
                source, sprite = planned[int(rng.integers(len(planned)))][:2]
            else:
                source, sprite = choices[int(rng.integers(len(choices)))]
            frames = source.sprite_frames(sprite)
            if frames and min(frames[0].shape[:2]) >= 6:
                break
        target = shot.height * float(rng.uniform(0.2, 0.42))
        factor = max(1, int(round(target / frames[0].shape[0])))
        factor = min(factor, max(1, int(shot.height * 0.6 // frames[0].shape[0])))
        scaled = [_upscale(f, factor) for f in frames]
        flipped = [np.ascontiguousarray(f[:, ::-1]) for f in scaled]
        half = scaled[0].shape[1] / 2
        cam0 = shot.camera_at(0)
        ground = cam0[1] + shot.height * float(rng.uniform(0.72, 0.98))
        speed = shot.width * float(rng.uniform(0.25, 0.7)) / FPS  # px per frame: 1.4 to 4 s across the frame
        anchor = "world"
        if kind == "stand":  # the first in the keyframe's view, the others anywhere the camera will pass
            lo, hi = sorted((shot.camera[0][0], shot.camera[1][0]))
            x = (cam0[0] + float(rng.uniform(0.15, 0.85)) * shot.width if not planned
                 else float(rng.uniform(lo + 0.1 * shot.width, hi + 0.9 * shot.width)))
            keys = [(0.0, x), (float(last), x)]
        elif kind == "follow":
            anchor = "screen"
            a, b = sorted(rng.uniform(0.25, 0.75, size=2))
            if rng.random() < 0.5:
                a, b = b, a
            keys = [(0.0, a * shot.width), (float(last), b * shot.width)]
        else:
            enter = float(rng.uniform(1, max(2, 0.45 * last))) if rng.random() < 0.75 else 0.0
            rightward = rng.random() < 0.5
            outside_l, outside_r = -half - 2, shot.width + half + 2

            def world_x(tau: float, screen_x: float) -> float:
                return shot.camera_at(tau)[0] + screen_x

            first, second = (outside_l, outside_r) if rightward else (outside_r, outside_l)
            if enter == 0.0:
                first = float(rng.uniform(0.1, 0.9)) * shot.width
            cross = abs(second - first) / speed
            keys = [(enter, world_x(enter, first)), (enter + cross, world_x(enter + cross, second))]
            if kind == "return":
                back = enter + cross + float(rng.uniform(0.15, 0.35)) * shot.frames
                keys += [(back, world_x(back, second)), (back + cross, world_x(back + cross, outside_l if rightward else outside_r))]
            if keys[0][0] > 0:  # offscreen until it enters
                keys.insert(0, (0.0, keys[0][1]))
            keys.append((float(last) + 1e6, keys[-1][1]))
        planned.append((source, sprite, scaled, flipped, factor, ground, anchor, keys, float(rng.uniform(0, 100)), kind))
    planned.sort(key=lambda p: p[5])  # back to front by ground line
    return [
        Actor(i + 1, sprite, scaled, flipped, factor, ground, anchor, keys, phase, kind)
        for i, (source, sprite, scaled, flipped, factor, ground, anchor, keys, phase, kind) in enumerate(planned)
    ]


def sprite_label(sprite: SpriteAnim) -> str:
    """A short name: the file stem, action or folder that tells the sprite apart (not 'left'/'right')."""
    parts = [p for p in re.split(r"[/:]", sprite.name) if p not in ("left", "right")]
    return parts[-1] if sprite.source != "supertux" else f"{parts[-2]} {parts[-1]}"


def _caption(shot: Shot) -> str:
    names = [sprite_label(a.sprite) for a in shot.actors]
    (x0, y0), (x1, y1) = shot.camera
    if x0 == x1 and y0 == y1:
        move = "a still camera"
    elif x0 != x1:
        move = "the camera panning " + ("right" if x1 > x0 else "left")
    else:
        move = "the camera panning " + ("down" if y1 > y0 else "up")
    where = shot.background_name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return f"{len(names)} hand-drawn sprites ({', '.join(names)}) over the painted background {where}, {move}"


# ---------------------------------------------------------------- rendering


def _paste(color: np.ndarray, ids: np.ndarray, sprite: np.ndarray, left: int, top: int, region: int) -> None:
    h, w = sprite.shape[:2]
    H, W = ids.shape
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(left + w, W), min(top + h, H)
    if x0 >= x1 or y0 >= y1:
        return
    part = sprite[y0 - top:y1 - top, x0 - left:x1 - left]
    alpha = part[..., 3:4].astype(np.uint16)
    under = color[y0:y1, x0:x1].astype(np.uint16)
    color[y0:y1, x0:x1] = ((part[..., :3].astype(np.uint16) * alpha + under * (255 - alpha) + 127) // 255).astype(np.uint8)
    ids[y0:y1, x0:x1][part[..., 3] >= 128] = region


def render_drawing(shot: Shot, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """Color (H, W, 3) uint8 and region ids (H, W) uint16 of the picture at time ``tau``."""
    cx, cy = shot.camera_at(tau)
    left, top = int(round(cx)), int(round(cy))
    color = np.ascontiguousarray(shot.background[top:top + shot.height, left:left + shot.width])
    ids = np.zeros((shot.height, shot.width), np.uint16)
    for actor in shot.actors:
        x, step = actor.world_x(shot, tau)
        x -= cx
        frame = int(np.floor((tau + actor.phase) * actor.sprite.fps / FPS)) % len(actor.frames)
        image = actor.mirrored[frame] if step != 0 and (step < 0) != actor.sprite.faces_left else actor.frames[frame]
        h, w = image.shape[:2]
        _paste(color, ids, image, int(round(x - w / 2)), int(round(actor.ground - cy - h)), actor.id)
    return color, ids


# ---------------------------------------------------------------- writing


def _ranges(visible: np.ndarray) -> list[list[int]]:
    edges = np.diff(np.concatenate([[0], visible.astype(np.int8), [0]]))
    return [[int(a), int(b) - 1] for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))]


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.asarray(rgb, np.float32).reshape(-1, 1, 3) / 255.0, cv2.COLOR_RGB2Lab).reshape(-1, 3)


def is_built(folder: Path, shot_name: str, seed: int) -> bool:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return (manifest.get("generator"), manifest.get("version"), manifest.get("name"), manifest.get("seed")) == (
        GENERATOR, VERSION, shot_name, seed)


def write_shot(shot: Shot, out: str | os.PathLike, extract=None) -> dict:
    """Render every frame of ``shot`` into folder ``out`` (atomically: temp folder, then rename); the manifest."""
    if extract is None:
        from longanimation.data.lineart_extraction import extract_lineart as extract
    from longanimation.atomic import atomic_dir
    from longanimation.data.lineart import lineart_to_image

    with atomic_dir(Path(out)) as tmp:
        regions = len(shot.actors) + 1
        seen = np.zeros((shot.frames, regions), bool)
        sums = np.zeros((regions, 3))
        counts = np.zeros(regions)
        frame_means = [[] for _ in range(regions)]
        for folder in ("color", "lineart", "regions"):
            (tmp / folder).mkdir()
        previous, first = -1, 0
        for t in range(shot.frames):
            d = int(shot.drawing_index[t])
            names = {folder: tmp / folder / f"{t:05d}.png" for folder in ("color", "lineart", "regions")}
            if d == previous:
                for folder, path in names.items():
                    source = tmp / folder / f"{first:05d}.png"
                    try:
                        os.link(source, path)
                    except OSError:
                        shutil.copyfile(source, path)
            else:
                color, ids = render_drawing(shot, float(shot.drawing_tau[d]))
                lines = extract(color)
                cv2.imwrite(str(names["color"]), cv2.cvtColor(color, cv2.COLOR_RGB2BGR))
                cv2.imwrite(str(names["lineart"]), lineart_to_image(lines))
                cv2.imwrite(str(names["regions"]), ids)
                flat_ids = ids.reshape(-1).astype(np.int64)
                pixel_count = np.bincount(flat_ids, minlength=regions)
                channel_sums = np.stack(
                    [np.bincount(flat_ids, color.reshape(-1, 3)[:, c].astype(np.float64), minlength=regions) for c in range(3)], 1)
                previous, first = d, t
            present = pixel_count > 0
            seen[t] = present
            sums += channel_sums
            counts += pixel_count
            for r in np.flatnonzero(present):
                frame_means[r].append(channel_sums[r] / pixel_count[r])
        mean = sums / np.maximum(counts, 1)[:, None]
        spread = []
        for r in range(regions):
            if frame_means[r]:
                diff = _lab(np.stack(frame_means[r])) - _lab(mean[r][None])
                spread.append(round(float(np.sqrt((diff**2).sum(axis=1).mean())), 2))
            else:
                spread.append(None)
        manifest = _manifest(shot, seen, mean, spread)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def _manifest(shot: Shot, seen: np.ndarray, mean: np.ndarray, spread: list) -> dict:
    gap = max(1, min(100, shot.frames // 3))  # as toon's return_gap
    objects = [{
        "id": 0, "name": shot.background_name.rsplit("/", 1)[-1], "kind": "background", "role": "background",
        "template": f"{shot.background_source}:{shot.background_name}", "source": shot.background_source,
        "parts": [{"id": 0, "name": "background", "color": [int(round(c)) for c in mean[0]], "color_is_mean": True,
                   "color_spread": spread[0], "visible_frames": _ranges(seen[:, 0])}],
        "outlines": [], "visible_frames": _ranges(seen[:, 0]),
    }]
    enters_late, returns, shapes = [], [], {}
    for actor in shot.actors:
        runs = _ranges(seen[:, actor.id])
        objects.append({
            "id": actor.id, "name": actor.sprite.name, "kind": "sprite", "role": actor.kind,
            "template": f"{actor.sprite.source}:{actor.sprite.name}", "source": actor.sprite.source,
            "sprite_frames": [ref.file if ref.box is None else f"{ref.file}#{','.join(map(str, ref.box))}"
                              for ref in actor.sprite.frames],
            "sprite_fps": actor.sprite.fps, "scale": actor.scale, "anchor": actor.anchor,
            "parts": [{"id": actor.id, "name": "sprite", "color": [int(round(c)) for c in mean[actor.id]],
                       "color_is_mean": True, "color_spread": spread[actor.id], "visible_frames": runs}],
            "outlines": [], "visible_frames": runs,
        })
        if runs and runs[0][0] > 0:
            enters_late.append(actor.id)
        for (_, left), (back, _) in zip(runs[:-1], runs[1:]):
            if back - left - 1 >= gap:
                returns.append({"object": actor.id, "left": left, "returned": back, "absent_frames": back - left - 1})
        shapes.setdefault(actor.sprite.name, []).append(actor.id)
    return {
        "generator": GENERATOR, "version": VERSION, "name": shot.name, "seed": shot.seed, "split": shot.split,
        "sources": sorted({shot.background_source, *(a.sprite.source for a in shot.actors)}),
        "packages": sorted({PACKAGE_OF_SOURCE[s] for s in {shot.background_source, *(a.sprite.source for a in shot.actors)}
                            if s in PACKAGE_OF_SOURCE}),
        "frames": shot.frames, "height": shot.height, "width": shot.width, "fps": FPS, "line_width": None,
        "lineart": "longanimation.data.lineart_extraction.extract_lineart, default method, of each color frame",
        "caption": shot.caption,
        "setting": {"background": f"{shot.background_source}:{shot.background_name}",
                    "camera": [[round(v, 2) for v in point] for point in shot.camera]},
        "region_count": len(shot.actors) + 1,
        "region_ids": "0 = background, 1..N = sprite instances (back to front)",
        "sprites": [a.sprite.name for a in shot.actors],
        "drawing_index": [int(i) for i in shot.drawing_index],
        "held_stretches": shot.held_stretches,
        "objects": objects,
        "events": {"return_gap": gap, "enters_late": enters_late, "returns": returns,
                   "same_shape": [ids for ids in shapes.values() if len(ids) > 1]},
        "files": {name: f"{name}/{{frame:05d}}.png" for name in ("color", "lineart", "regions")},
    }


# ---------------------------------------------------------------- command line


def shot_name(split: str, index: int, sources: tuple[str, ...], width: int, height: int) -> str:
    return f"{split}-{index:02d}-{'+'.join(sources)}-{width}x{height}"


def build(out: Path, split: str, seed: int, arcade: str | None, only: list[str] | None = None) -> list[str]:
    """Build every shot of ``split`` ('test', 'train' or 'all') missing from ``out``; names of the shots."""
    splits = ["test", "train"] if split == "all" else [split]
    wanted = {name for s in splits for specs in [SHOT_SPECS[s]] for spec in specs for name in spec[0]}
    opened: dict[str, Source] = {}
    for name in sorted(wanted):
        if name == "arcade":
            store = arcade_store(arcade)
            if store is None or not store.exists():
                print("real_shots: arcade images not found (pip download --no-deps arcade; --arcade WHEEL): "
                      "its shots use supertux only", file=sys.stderr)
                continue
            opened[name] = open_source(name, store)
        else:
            opened[name] = open_source(name)
    built = []
    for s in splits:
        for index, (names, width, height, frames) in enumerate(SHOT_SPECS[s]):
            available = tuple(n for n in names if n in opened)
            if not available:
                continue
            name = shot_name(s, index, available, width, height)
            if only and name not in only:
                continue
            folder = out / name
            built.append(name)
            if is_built(folder, name, seed):
                print(f"{name}: already built")
                continue
            shot = plan_shot(name, s, [opened[n] for n in available], width, height, frames, seed)
            manifest = write_shot(shot, folder)
            print(f"{name}: {frames} frames {width}x{height}, {len(shot.actors)} sprites, "
                  f"{len(set(manifest['drawing_index']))} drawings", flush=True)
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"dataset folder (default {DEFAULT_OUT})")
    parser.add_argument("--split", choices=["test", "train", "all"], default="test")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--arcade", default=None, help="arcade wheel, folder holding one, or installed package folder")
    parser.add_argument("--only", nargs="*", default=None, help="build only these shot names")
    args = parser.parse_args(argv)
    try:
        build(args.out, args.split, args.seed, args.arcade, args.only)
    except SourceMissing as error:
        print(f"real_shots: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
