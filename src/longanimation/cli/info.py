"""longanimation CLI: info commands (being written)."""

from .app import app  # noqa: F401
