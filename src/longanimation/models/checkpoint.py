"""Safetensors + JSON checkpoints for our own modules, and refusal of pickle files.

Every module we define (SketchDiT, the memory model, DGLM, ...) inherits
:class:`PretrainedModule`: its constructor takes one config dataclass, and a
saved folder holds ``config.json`` (the dataclass as JSON) and
``model.safetensors``. Loading checks the type of every config value, names
missing, unexpected and mis-shaped tensors, and never unpickles anything.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, TypeVar, Union

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..atomic import atomic_dir
from ..errors import UserError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle")

T = TypeVar("T", bound="PretrainedModule")


def is_pickle_file(path: Path) -> bool:
    """True for a legacy torch checkpoint: a zip archive holding a pickle, or a raw pickle stream."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return False
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def refuse_pickle(path: str | os.PathLike) -> None:
    """Raise :class:`UserError` if ``path`` (a file, or any weight file in a folder) is a pickle."""
    path = Path(path)
    candidates = [path] if path.is_file() else sorted(path.glob("**/*")) if path.is_dir() else []
    for candidate in candidates:
        if candidate.suffix in PICKLE_SUFFIXES and is_pickle_file(candidate):
            raise UserError(
                f"{candidate} is a pickle checkpoint; refusing to load it because unpickling can run "
                "arbitrary code. Convert it to safetensors (safetensors.torch.save_file) and retry"
            )


def load_state_dict_checked(module: nn.Module, weights: str | os.PathLike) -> None:
    """Load a safetensors file into ``module`` strictly, naming every mismatch in one line."""
    weights = Path(weights)
    if not weights.is_file():
        refuse_pickle(weights.parent)
        raise UserError(f"missing weights file {weights}")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as error:
        raise UserError(f"cannot read {weights}: not a valid safetensors file ({error})") from None
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshaped = sorted(
        f"{name} {tuple(state[name].shape)} != {tuple(expected[name].shape)}"
        for name in set(state) & set(expected)
        if state[name].shape != expected[name].shape
    )
    problems = []
    for label, names in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)):
        if names:
            shown = ", ".join(names[:5]) + (f" (+{len(names) - 5} more)" if len(names) > 5 else "")
            problems.append(f"{len(names)} {label}: {shown}")
    if problems:
        raise UserError(f"{weights} does not match {type(module).__name__}: " + "; ".join(problems))
    module.load_state_dict(state, strict=True)


def save_state_dict(module: nn.Module, weights: Path, metadata: dict[str, str] | None = None) -> None:
    """Save ``module``'s state dict as safetensors; tensors sharing storage are saved as copies."""
    seen: set[tuple[int, int]] = set()
    state: dict[str, torch.Tensor] = {}
    for name, tensor in module.state_dict().items():
        tensor = tensor.detach()
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
        state[name] = tensor.clone().contiguous() if key in seen else tensor.contiguous()
        seen.add(key)
    save_file(state, str(weights), metadata=metadata or {"format": "pt"})


def read_config(directory: Path, config_class: type) -> Any:
    """Read ``config.json`` of a saved module into ``config_class`` (unknown keys and wrong types are errors)."""
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise UserError(f"missing {path}: not a saved {config_class.__name__} folder")
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"cannot read {path}: {error}") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path} must hold a JSON object, not {type(raw).__name__}")
    raw.pop("_class", None)
    fields = {field.name for field in dataclasses.fields(config_class)}
    unknown = sorted(set(raw) - fields)
    if unknown:
        raise UserError(f"{path} has unknown keys for {config_class.__name__}: {', '.join(unknown)}")
    return config_from_dict(config_class, raw, where=str(path))


def config_from_dict(config_class: type, raw: dict[str, Any], where: str | None = None) -> Any:
    """Build a (possibly nested) config dataclass from JSON-like data, checking every value against its type.

    Lists become tuples and integers are accepted for floats; a value of the
    wrong type, an unknown key or a value the dataclass refuses is a one-line
    :class:`UserError` that starts with ``where`` (default: the class name).
    """
    where = where or config_class.__name__
    if not isinstance(raw, dict):
        raise UserError(f"{where}: expected a JSON object, got {_shown(raw)}")
    hints = typing.get_type_hints(config_class)
    names = [field.name for field in dataclasses.fields(config_class)]
    unknown = sorted(str(key) for key in raw if key not in names)
    if unknown:
        raise UserError(f"{where}: unknown keys for {config_class.__name__}: {', '.join(unknown)}")
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
        return config_from_dict(hint, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where} must be a list, got {_shown(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(checked_value(item, args[0], f"{where}[{i}]") for i, item in enumerate(value))
        if args and len(value) != len(args):
            raise UserError(f"{where} must be a list of {len(args)} values, got {len(value)}")
        return tuple(checked_value(item, arg, f"{where}[{i}]") for i, (item, arg) in enumerate(zip(value, args)))
    expected = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if hint in expected:
        if hint is bool:
            fits = isinstance(value, bool)
        else:  # JSON true/false are no numbers here; an integer is a fine float
            fits = not isinstance(value, bool) and isinstance(value, (int, float) if hint is float else hint)
        if not fits:
            raise UserError(f"{where} must be {expected[hint]}, got {_shown(value)}")
        return float(value) if hint is float else value
    if hint is type(None):
        if value is not None:
            raise UserError(f"{where} must be null, got {_shown(value)}")
        return None
    return value  # Any, dict[...]: passed on as is


def _shown(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def _one_line(error: BaseException) -> str:
    message = " ".join(str(error).split()) or type(error).__name__
    return message if len(message) <= 300 else message[:300] + " ..."


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class PretrainedModule(nn.Module):
    """Base for our modules: ``__init__(config)``, ``save_pretrained`` and ``from_pretrained``."""

    config_class: ClassVar[type]

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write ``config.json`` and ``model.safetensors`` into ``directory`` atomically."""
        with atomic_dir(directory) as tmp:
            config = dataclasses.asdict(self.config) | {"_class": type(self).__name__}
            (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
            save_state_dict(self, tmp / WEIGHTS_NAME)

    @classmethod
    def from_pretrained(
        cls: type[T],
        directory: str | os.PathLike,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> T:
        """Build the module from ``directory/config.json`` and load ``model.safetensors`` strictly."""
        directory = Path(directory)
        if not directory.is_dir():
            raise UserError(f"model folder {directory} does not exist")
        refuse_pickle(directory)
        config = read_config(directory, cls.config_class)
        try:
            model = cls(config)
        except (TypeError, ValueError, RuntimeError, ZeroDivisionError, AssertionError) as error:
            raise UserError(
                f"{directory / CONFIG_NAME} does not describe a valid {cls.__name__}: {_one_line(error)}"
            ) from None
        load_state_dict_checked(model, directory / WEIGHTS_NAME)
        return model.to(device=device, dtype=dtype)
