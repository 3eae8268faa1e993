"""Root of the ``longanimation`` command.

Each command group lives in its own module under :mod:`longanimation.cli` and
registers itself on :data:`app` when imported by :func:`main`. Heavy libraries
(torch, diffusers) are imported inside the commands, so ``--help`` and the
data commands start fast.
"""

from __future__ import annotations

import importlib
import sys

import click
import typer

from ..errors import UserError

app = typer.Typer(
    name="longanimation",
    help="Reference-based colorization of long line-art animation (LongAnimation, ICCV 2025).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Modules that register commands on `app` (imported lazily by `main`).
COMMAND_MODULES = (
    "longanimation.cli.io_commands",
    "longanimation.cli.lineart",
    "longanimation.cli.toon",
    "longanimation.cli.info",
)


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the CLI, mapping user errors to one line and exit code 2."""
    _register_commands()
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="longanimation", standalone_mode=False)
    except UserError as error:
        click.echo(f"error: {error}", err=True)
        return _exit(UserError.exit_code, argv)
    except click.exceptions.Exit as done:
        return _exit(done.exit_code, argv)
    except click.ClickException as error:  # usage errors: unknown option, missing argument
        error.show()
        return _exit(error.exit_code, argv)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        return _exit(130, argv)
    return _exit(result if isinstance(result, int) else 0, argv)


def _exit(code: int, argv: list[str] | None) -> int:
    # Called as a console script (argv is None): terminate the process with the code.
    if argv is None:
        sys.exit(code)
    return code
