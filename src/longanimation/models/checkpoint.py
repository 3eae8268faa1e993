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
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..atomic import atomic_dir
from ..errors import UserError
from ..typed_config import build_dataclass

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


def write_config(directory: Path, config: Any, class_name: str) -> None:
    """Write a module's config dataclass as ``directory/config.json`` (with its class name)."""
    raw = dataclasses.asdict(config) | {"_class": class_name}
    (directory / CONFIG_NAME).write_text(json.dumps(raw, indent=2, sort_keys=True) + "\n")


def read_config(directory: Path, config_class: type) -> Any:
    """Read ``config.json`` of a saved module into ``config_class`` (unknown keys and wrong types are errors)."""
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise UserError(f"missing {path}: not a saved {config_class.__name__} folder")
    raw = read_json(path)
    raw.pop("_class", None)
    fields = {field.name for field in dataclasses.fields(config_class)}
    unknown = sorted(set(raw) - fields)
    if unknown:
        raise UserError(f"{path} has unknown keys for {config_class.__name__}: {', '.join(unknown)}")
    return build_dataclass(config_class, raw, where=str(path))


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, or a one-line error naming the file."""
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"cannot read {path}: {one_line(error)}") from None
    if not isinstance(value, dict):
        raise UserError(f"{path} must hold a JSON object, not {type(value).__name__}")
    return value


def one_line(error: BaseException) -> str:
    """An exception's message on one line, at most about 300 characters."""
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
            write_config(tmp, self.config, type(self).__name__)
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
                f"{directory / CONFIG_NAME} does not describe a valid {cls.__name__}: {one_line(error)}"
            ) from None
        load_state_dict_checked(model, directory / WEIGHTS_NAME)
        return model.to(device=device, dtype=dtype)
