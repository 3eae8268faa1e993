"""The cast: which characters and props a world has, their shapes, paints, inks, depths and names.

Objects are listed back to front (their index is their depth order, the
background being object 0):

1. the *stroller*, a character wandering at the back;
2. the first *twin*;
3. a bouncing *ball*;
4. the second *twin*, same shape as the first, other colors;
5. the *wanderer*, the front character (the one that leaves and comes back);
6. two or three static foreground props (*scenery*) in front of everyone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .background import BACKGROUND, PLACES
from .figures import CHARACTER_TEMPLATES, SCENERY_TEMPLATES, Figure, ball_figure, character_figure, scenery_figure
from .palette import BODY_PAINTS, INKS, RGB, SkyScheme, figure_paints
from .regions import RegionTable
from .stage import Stage

SCENERY_SIZES = {"bush": 0.3, "mailbox": 0.45, "lamp post": 1.3}
"""Heights of foreground props, as fractions of a character's height at their depth."""
BALL_SIZE = 0.28
LAMP_POST_PAINT: RGB = (72, 96, 88)


@dataclass(frozen=True)
class Actor:
    """One object other than the background, with its region ids.

    ``size`` scales the figure relative to a character standing at the same
    ground depth; ``ground_y`` is the lane it usually stands on.
    """

    index: int
    role: str  # "stroller", "twin", "ball", "wanderer" or "scenery"
    name: str
    figure: Figure
    size: float
    ground_y: float
    part_ids: tuple[int, ...]
    outline_id: int

    @property
    def kind(self) -> str:
        return self.figure.kind


def cast_actors(table: RegionTable, stage: Stage, scheme: SkyScheme, rng: np.random.Generator) -> list[Actor]:
    """Choose the cast, allocate its region ids (back to front) and return it in depth order."""
    templates = [str(t) for t in rng.permutation(list(CHARACTER_TEMPLATES))]
    twin_template, wanderer_template, stroller_template = templates[:3]
    paints = [str(p) for p in rng.permutation(list(BODY_PAINTS))]
    stroller_paint, twin_paints, ball_paint, wanderer_paint = paints[0], paints[1:3], paints[3], paints[4]
    twin_depth = rng.uniform(0.3, 0.45)
    twin_gap = rng.uniform(0.1, 0.2)
    plan = [
        ("stroller", character_figure(stroller_template), stroller_paint, 1.0, stage.lane_y(rng.uniform(0.0, 0.2))),
        ("twin", character_figure(twin_template), twin_paints[0], 1.0, stage.lane_y(twin_depth)),
        ("ball", ball_figure(), ball_paint, BALL_SIZE, stage.lane_y(twin_depth + twin_gap / 2)),
        ("twin", character_figure(twin_template), twin_paints[1], 1.0, stage.lane_y(twin_depth + twin_gap)),
        ("wanderer", character_figure(wanderer_template), wanderer_paint, 1.0, stage.lane_y(1.0)),
    ]
    for template in rng.choice(list(SCENERY_TEMPLATES), size=int(rng.integers(2, 4)), replace=False):
        plan.append(("scenery", scenery_figure(str(template)), "", SCENERY_SIZES[str(template)],
                     stage.scenery_y + rng.uniform(-0.01, 0.02) * stage.panorama_height))
    actors = []
    for index, (role, figure, paint, size, ground_y) in enumerate(plan, start=BACKGROUND + 1):
        colors = _paints(role, figure, paint, scheme, rng)
        name = f"{paint} {figure.template}" if paint else figure.template
        part_ids = tuple(table.add_part(index, f"{name} {part}", colors[role_name])
                         for part, role_name in zip(figure.part_names, figure.part_roles))
        outline_id = table.add_outline(index, f"{name} outline", INKS[str(rng.choice(list(INKS)))])
        actors.append(Actor(index, role, name, figure, size, ground_y, part_ids, outline_id))
    return actors


def _paints(role: str, figure: Figure, paint: str, scheme: SkyScheme, rng: np.random.Generator) -> dict[str, RGB]:
    accent = BODY_PAINTS[str(rng.choice([p for p in BODY_PAINTS if p != paint]))]
    if role != "scenery":
        return figure_paints(BODY_PAINTS[paint], accent)
    if figure.template == "bush":
        return figure_paints(scheme.leaves[int(rng.integers(len(scheme.leaves)))], accent)
    if figure.template == "lamp post":
        return figure_paints(LAMP_POST_PAINT, accent) | {"eye": scheme.lamp_light}
    return figure_paints(BODY_PAINTS[str(rng.choice(["red", "blue", "green"]))], accent)


def caption(actors: list[Actor], place: str, scheme: SkyScheme) -> str:
    """A one-sentence text prompt, e.g. "a red robot, a blue cat and an orange cat walk through a town at dusk"."""
    order = {"wanderer": 0, "twin": 1, "stroller": 2}
    characters = sorted((a for a in actors if a.role in order), key=lambda a: (order[a.role], a.index))
    names = [f"{_article(a.name)} {a.name}" for a in characters]
    who = ", ".join(names[:-1]) + " and " + names[-1]
    ball = next(a for a in actors if a.role == "ball")
    return f"{who} walk {PLACES[place]} {scheme.phrase}, while {_article(ball.name)} {ball.name} bounces by"


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"
