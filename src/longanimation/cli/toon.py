"""longanimation CLI: toon commands (being written)."""

from .app import app  # noqa: F401
