"""``longanimation ui``: the colorize run as a local web page (Gradio, an optional extra)."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import UserError
from .app import app
from .colorize import DEFAULT_MODEL


@app.command("ui")
def ui(
    host: str = typer.Option("127.0.0.1", help="Address to serve on (0.0.0.0 opens it to the network)."),
    port: int = typer.Option(7860, help="Port to serve on."),
    model: Path = typer.Option(DEFAULT_MODEL, help="Model folder the page starts with (default: the shipped tiny model)."),
) -> None:
    """Serve a web page that colors uploaded line art from keyframes, as `colorize` does (Ctrl+C stops it)."""
    try:
        import gradio  # noqa: F401  (only to tell a missing extra from a broken install)
    except ImportError:
        raise UserError('the web UI needs gradio: pip install -e ".[ui]"') from None
    if not model.exists():
        raise UserError(f"model folder {model} does not exist (pass --model PATH)")
    from ..ui.app import build_app

    page = build_app(model)
    try:
        page.launch(server_name=host, server_port=port)
    except OSError as error:  # port taken, address not ours
        raise UserError(f"cannot serve the UI on {host}:{port}: {error}") from None
