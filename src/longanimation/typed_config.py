"""Config dataclasses from JSON/YAML data, every value checked against its type annotation.

One builder for every config the project reads (model folders' ``config.json``
and index, training YAML, checkpoints' saved configs), so a wrong value is the
same one-line :class:`~longanimation.errors.UserError` wherever it is written.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, Union

from .errors import UserError

_EXPECTED = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def build_dataclass(config_class: type, raw: Any, where: str | None = None) -> Any:
    """Build a (possibly nested) config dataclass from a mapping, checking every value against its type.

    Lists become tuples, integers are fine floats (and so are strings such as
    "1e-5", which YAML 1.1 reads as text); a value of the wrong type, an
    unknown key or a value the dataclass refuses is a one-line error that
    starts with ``where`` (default: the class name).
    """
    where = where or config_class.__name__
    if not isinstance(raw, dict):
        raise UserError(f"{where}: expected a mapping, got {_shown(raw)}")
    hints = typing.get_type_hints(config_class)
    names = [field.name for field in dataclasses.fields(config_class)]
    unknown = sorted(str(key) for key in raw if key not in names)
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(names)}")
    kwargs = {name: checked_value(raw[name], hints[name], f"{where}: {name}") for name in names if name in raw}
    try:
        return config_class(**kwargs)
    except (TypeError, ValueError) as error:
        raise UserError(f"{where}: {_one_line(error)}") from None


def checked_value(value: Any, hint: Any, where: str) -> Any:
    """``value`` if it fits type ``hint`` (bool, int, float, str, None, tuples, unions, dataclasses), else UserError."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [arg for arg in args if arg is not type(None)]
        for option in options[:-1]:
            try:
                return checked_value(value, option, where)
            except UserError:
                pass
        return checked_value(value, options[-1], where)
    if dataclasses.is_dataclass(hint):
        return build_dataclass(hint, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where}: expected a list, got {_shown(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(checked_value(item, args[0], f"{where}[{i}]") for i, item in enumerate(value))
        if args and len(value) != len(args):
            raise UserError(f"{where}: expected a list of {len(args)} values, got {len(value)}")
        return tuple(checked_value(item, arg, f"{where}[{i}]") for i, (item, arg) in enumerate(zip(value, args)))
    if hint is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    if hint in _EXPECTED:
        if hint is bool:
            fits = isinstance(value, bool)
        else:  # true/false are no numbers here; an integer is a fine float
            fits = not isinstance(value, bool) and isinstance(value, (int, float) if hint is float else hint)
        if not fits:
            raise UserError(f"{where}: expected {_EXPECTED[hint]}, got {_shown(value)}")
        return float(value) if hint is float else value
    if hint is type(None):
        if value is not None:
            raise UserError(f"{where}: expected null, got {_shown(value)}")
        return None
    return value  # Any, dict[...]: passed on as is


def _shown(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def _one_line(error: BaseException) -> str:
    message = " ".join(str(error).split()) or type(error).__name__
    return message if len(message) <= 300 else message[:300] + " ..."
