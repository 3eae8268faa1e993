"""Root of the ``longanimation`` command.

Each command group lives in its own module under :mod:`longanimation.cli` and
registers itself on :data:`app` when imported by :func:`main`. Heavy libraries
(torch, diffusers) are imported inside the commands, so ``--help`` and the
data commands start fast.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

from ..errors import UserError

app = typer.Typer(
    name="longanimation",
    help="Reference-based colorization of long line-art animation (LongAnimation, ICCV 2025).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

INTERRUPTED = 130  # exit code of a command stopped by Ctrl-C (128 + SIGINT)


class Interrupted(Exception):
    """Ctrl-C in a command that says how to continue (its message, one line); exit code 130.

    Not a KeyboardInterrupt: typer turns those into a silent exit 130 before :func:`main` sees them.
    """


# typer bundles its own click; its usage errors all derive from this class.
_CLICK_ERROR = next(cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "ClickException")

# Modules that register commands on `app` (imported lazily by `main`).
COMMAND_MODULES = (
    "longanimation.cli.io_commands",
    "longanimation.cli.lineart",
    "longanimation.cli.toon",
    "longanimation.cli.info",
    "longanimation.cli.colorize",
    "longanimation.cli.benchmark",
    "longanimation.cli.evaluate",
    "longanimation.cli.train",
    "longanimation.cli.ui",
    "longanimation.cli.convert",
)


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the CLI, mapping user errors to one line and exit code 2."""
    # Our own progress display replaces the libraries' per-file loading bars.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    if "transformers" in sys.modules:  # imported before us (a test, the web UI): the variables came too late
        sys.modules["transformers"].utils.logging.disable_progress_bar()
    _register_commands()
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="longanimation", standalone_mode=False)
    except UserError as error:
        typer.echo(f"error: {error}", err=True)
        return _exit(UserError.exit_code, argv)
    except Interrupted as interrupted:
        typer.echo(str(interrupted), err=True)
        return _exit(INTERRUPTED, argv)
    except typer.Exit as done:
        return _exit(done.exit_code, argv)
    except _CLICK_ERROR as error:  # usage errors: unknown option, bad value, missing argument
        typer.echo(f"error: {error.format_message()} (see --help)", err=True)
        return _exit(2, argv)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("interrupted", err=True)
        return _exit(INTERRUPTED, argv)
    if result == INTERRUPTED:  # typer (0.29) returns a Ctrl-C as exit code 130 instead of raising it
        typer.echo("interrupted", err=True)
    return _exit(result if isinstance(result, int) else 0, argv)


def _exit(code: int, argv: list[str] | None) -> int:
    # Called as a console script (argv is None): terminate the process with the code.
    if argv is None:
        sys.exit(code)
    return code
