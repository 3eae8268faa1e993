"""The synthetic cel-animation "toon world": long shots with exact ground truth.

A toon world is a cartoon shot generated from a seed: flat-colored characters
made of parts (head, body, limbs, eyes...) with dark outlines walk, turn, jump
and approach the camera over a painted panorama that the camera pans across.
It contains what makes long colorization hard: look-alike characters in other
colors crossing each other, occlusion, a character leaving the frame for 100
frames or more and coming back, characters entering after the first frame,
and stretches animated on twos and threes (held drawings). Frames are drawn
without anti-aliasing, so every pixel belongs to exactly one region, and every
region has exactly one flat color.

In memory (:class:`ToonWorld`)::

    world = ToonWorld(ToonConfig(seed=3, frames=600, height=256, width=256))
    frame = world.render(t)            # ToonFrame: color (H, W, 3) uint8 RGB,
                                       # lineart (H, W) bool, regions (H, W) int32
    clip = world.render_range(a, b)    # ToonClip of frames a .. b-1, stacked
    world.manifest()                   # JSON-serialisable dict (see .manifest)
    world.drawing_index(t)             # held frames share a drawing index

On disk (:func:`write_world`, ``longanimation toon generate OUT``)::

    OUT/manifest.json          the manifest (see longanimation.data.toon.manifest)
    OUT/color/00000.png        RGB color frames, 8-bit
    OUT/lineart/00000.png      line art, 8-bit grayscale: black lines (0) on white (255)
    OUT/regions/00000.png      region ids, 16-bit grayscale PNG (pixel value = region id)

Frame files are numbered from 0 with at least 5 digits (more for shots of
100000 frames or more). The folder is written atomically: it appears complete
or not at all. The same seed and sizes give byte-identical output.
"""

from .config import ToonConfig
from .manifest import frame_ranges
from .timing import HeldStretch
from .world import ToonClip, ToonFrame, ToonObject, ToonRegion, ToonWorld
from .writer import write_world

__all__ = [
    "HeldStretch",
    "ToonClip",
    "ToonConfig",
    "ToonFrame",
    "ToonObject",
    "ToonRegion",
    "ToonWorld",
    "frame_ranges",
    "write_world",
]
