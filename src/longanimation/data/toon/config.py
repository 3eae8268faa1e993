"""Settings of one synthetic toon shot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...errors import UserError


@dataclass(frozen=True)
class ToonConfig:
    """What to generate: the seed decides everything else (cast, set, script, timing).

    Sizes are in pixels. ``line_width`` is the outline thickness; ``None`` picks
    one that scales with the frame (1 px at 256, 3 px at 512). Invalid settings
    raise :class:`~longanimation.errors.UserError`.
    """

    seed: int = 0
    frames: int = 600
    height: int = 256
    width: int = 256
    fps: int = 24
    line_width: int | None = None

    MIN_SIZE: ClassVar[int] = 32
    MAX_SIZE: ClassVar[int] = 4096

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise UserError(f"seed must be >= 0, got {self.seed}")
        if self.frames < 1:
            raise UserError(f"frames must be >= 1, got {self.frames}")
        for name, value in (("height", self.height), ("width", self.width)):
            if not self.MIN_SIZE <= value <= self.MAX_SIZE:
                raise UserError(f"{name} must be between {self.MIN_SIZE} and {self.MAX_SIZE} pixels, got {value}")
        if self.fps < 1:
            raise UserError(f"fps must be >= 1, got {self.fps}")
        if self.line_width is not None and not 1 <= self.line_width <= 16:
            raise UserError(f"line width must be between 1 and 16 pixels, got {self.line_width}")

    @property
    def outline_width(self) -> int:
        """Outline thickness in pixels (``line_width`` or the size-scaled default)."""
        if self.line_width is not None:
            return self.line_width
        return max(1, int(min(self.height, self.width) / 200 + 0.5))
