"""Flat colors of the toon world: character paints, ink colors and sky schemes.

All colors are RGB triples of ints in 0..255. Every color is flat: a region is
painted with exactly one of them, so no gradients and no anti-aliasing.
"""

from __future__ import annotations

from dataclasses import dataclass

RGB = tuple[int, int, int]

BODY_PAINTS: dict[str, RGB] = {
    "red": (214, 64, 52),
    "blue": (58, 110, 200),
    "orange": (240, 146, 48),
    "green": (84, 168, 82),
    "yellow": (242, 206, 64),
    "purple": (142, 92, 190),
    "pink": (236, 134, 170),
    "teal": (48, 164, 160),
    "gray": (150, 152, 160),
    "brown": (156, 104, 66),
}
"""Main paints of characters and props, by the name used in captions."""

INKS: dict[str, RGB] = {
    "black": (16, 14, 18),
    "dark brown": (62, 38, 26),
    "navy": (26, 32, 72),
    "dark plum": (60, 28, 56),
    "dark green": (24, 52, 34),
    "charcoal": (44, 44, 50),
}
"""Outline colors: dark, but not always black (cel animation uses colored lines)."""

EYE_WHITE: RGB = (248, 248, 240)
PUPIL: RGB = (34, 28, 30)


def tint(color: RGB, amount: float) -> RGB:
    """Mix ``color`` toward white by ``amount`` (0 keeps it, 1 gives white)."""
    return tuple(int(round(c + (255 - c) * amount)) for c in color)  # type: ignore[return-value]


def shade(color: RGB, amount: float) -> RGB:
    """Mix ``color`` toward black by ``amount`` (0 keeps it, 1 gives black)."""
    return tuple(int(round(c * (1.0 - amount))) for c in color)  # type: ignore[return-value]


def figure_paints(main: RGB, accent: RGB) -> dict[str, RGB]:
    """Colors of a figure's paint roles (see :mod:`.figures`) from its main and accent paints."""
    return {
        "main": main,
        "light": tint(main, 0.45),
        "limb": shade(main, 0.22),
        "accent": accent,
        "eye": EYE_WHITE,
        "pupil": PUPIL,
    }


@dataclass(frozen=True)
class SkyScheme:
    """The background paints for one time of day."""

    name: str
    phrase: str  # how a caption says it, e.g. "at dusk"
    sky: RGB
    sun: RGB
    cloud: RGB
    far_hills: RGB
    near_hills: RGB
    ground: RGB
    field: RGB
    path: RGB
    marking: RGB
    walls: tuple[RGB, ...]
    roofs: tuple[RGB, ...]
    window: RGB
    door: RGB
    trunk: RGB
    leaves: tuple[RGB, ...]
    water: RGB
    lamp_light: RGB
    ink: RGB


SKY_SCHEMES: dict[str, SkyScheme] = {
    "day": SkyScheme(
        name="day",
        phrase="on a sunny day",
        sky=(150, 206, 240),
        sun=(255, 226, 96),
        cloud=(250, 250, 250),
        far_hills=(132, 176, 150),
        near_hills=(104, 168, 96),
        ground=(150, 196, 104),
        field=(186, 212, 112),
        path=(214, 190, 146),
        marking=(246, 240, 220),
        walls=((236, 214, 178), (206, 150, 120), (180, 196, 214), (230, 190, 120)),
        roofs=((176, 72, 60), (90, 96, 130), (120, 84, 60)),
        window=(120, 170, 210),
        door=(120, 80, 56),
        trunk=(120, 84, 56),
        leaves=((64, 140, 70), (92, 160, 64), (50, 120, 84)),
        water=(96, 160, 220),
        lamp_light=(250, 240, 200),
        ink=(44, 44, 50),
    ),
    "dusk": SkyScheme(
        name="dusk",
        phrase="at dusk",
        sky=(240, 160, 120),
        sun=(255, 200, 110),
        cloud=(232, 132, 140),
        far_hills=(150, 110, 140),
        near_hills=(118, 96, 120),
        ground=(132, 128, 96),
        field=(160, 140, 92),
        path=(190, 150, 120),
        marking=(236, 214, 190),
        walls=((214, 170, 150), (180, 130, 120), (160, 150, 170), (206, 160, 110)),
        roofs=((140, 60, 64), (84, 74, 110), (104, 70, 60)),
        window=(255, 210, 120),
        door=(98, 64, 52),
        trunk=(96, 66, 52),
        leaves=((80, 110, 70), (100, 120, 64), (70, 96, 80)),
        water=(170, 130, 170),
        lamp_light=(255, 220, 140),
        ink=(62, 38, 26),
    ),
    "night": SkyScheme(
        name="night",
        phrase="at night",
        sky=(34, 40, 88),
        sun=(236, 236, 210),
        cloud=(70, 78, 124),
        far_hills=(48, 60, 98),
        near_hills=(40, 74, 80),
        ground=(52, 90, 74),
        field=(64, 104, 80),
        path=(104, 104, 120),
        marking=(190, 190, 170),
        walls=((110, 110, 140), (96, 84, 110), (80, 100, 120), (120, 104, 96)),
        roofs=((80, 44, 60), (50, 54, 80), (70, 56, 50)),
        window=(255, 214, 110),
        door=(60, 44, 50),
        trunk=(64, 50, 48),
        leaves=((36, 80, 64), (44, 92, 60), (30, 70, 70)),
        water=(50, 70, 130),
        lamp_light=(255, 230, 150),
        ink=(16, 14, 18),
    ),
}
