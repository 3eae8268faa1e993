"""longanimation CLI: lineart commands (being written)."""

from .app import app  # noqa: F401
