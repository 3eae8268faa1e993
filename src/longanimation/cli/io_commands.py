"""longanimation CLI: io_commands commands (being written)."""

from .app import app  # noqa: F401
