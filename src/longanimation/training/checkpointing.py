"""Resumable training state in safetensors + JSON (nothing is ever pickled).

``OUTPUT/checkpoints/step-N/`` (written atomically: a folder that exists is complete)::

    state.json              format, stage, step, positions consumed, world size
    config.yaml             the run's config
    trainable.safetensors   the stage's trainable weights (and training-only heads)
    optimizer.safetensors   optimizer state tensors, key "<parameter name>/<entry>" (e.g. exp_avg)
    optimizer.json          the rest of the optimizer state: per-parameter scalars, param groups
    scheduler.json          learning-rate scheduler state
    rng-rank<R>.safetensors torch CPU (and CUDA) generator states of process R, uint8
    rng-rank<R>.json        numpy and python generator states of process R

Weights and optimizer state are *full* (unsharded) state dicts taken with
``torch.distributed.checkpoint.state_dict``, keyed by parameter name, so the
files do not depend on the number of processes or on DDP/FSDP wrapping.
``--resume`` picks the highest complete ``step-N``.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)

from ..atomic import atomic_dir, atomic_file
from ..errors import UserError

FORMAT = "longanimation.train_state"
VERSION = 1
CHECKPOINTS = "checkpoints"
STATE, CONFIG, WEIGHTS = "state.json", "config.yaml", "trainable.safetensors"
OPTIMIZER_TENSORS, OPTIMIZER_REST, SCHEDULER = "optimizer.safetensors", "optimizer.json", "scheduler.json"
FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


def checkpoint_steps(output: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under ``output`` as ``(step, folder)``, oldest first."""
    found = []
    for folder in (output / CHECKPOINTS).glob("step-*"):
        suffix = folder.name.removeprefix("step-")
        if suffix.isdigit() and (folder / STATE).is_file():
            found.append((int(suffix), folder))
    return sorted(found)


def latest_checkpoint(output: Path) -> Path | None:
    steps = checkpoint_steps(output)
    return steps[-1][1] if steps else None


# ---------------------------------------------------------------------------- saving


def save_checkpoint(
    accelerator,
    output: Path,
    *,
    step: int,
    samples_consumed: int,
    stage_name: str,
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    config: dict[str, Any],
    keep: int,
) -> Path:
    """Write ``step-<step>`` (collective: every process must call it) and prune to the last ``keep``."""
    folder = output / CHECKPOINTS / f"step-{step}"
    staging = output / CHECKPOINTS / f".rng-step-{step}"
    weights = get_model_state_dict(module, options=FULL)
    optimizer_state = get_optimizer_state_dict(module, optimizer, options=FULL)
    write_rng_state(staging, accelerator.process_index)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        with atomic_dir(folder) as tmp:
            save_file(_contiguous(weights), str(tmp / WEIGHTS))
            tensors, rest = flatten_optimizer_state(optimizer_state)
            save_file(tensors, str(tmp / OPTIMIZER_TENSORS))
            _write_json(tmp / OPTIMIZER_REST, rest)
            _write_json(tmp / SCHEDULER, scheduler.state_dict())
            (tmp / CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
            for path in sorted(staging.iterdir()):
                shutil.move(str(path), tmp / path.name)
            _write_json(
                tmp / STATE,
                {
                    "format": FORMAT,
                    "version": VERSION,
                    "stage": stage_name,
                    "step": step,
                    "samples_consumed": samples_consumed,
                    "world_size": accelerator.num_processes,
                },
            )
        shutil.rmtree(staging, ignore_errors=True)
        for _, old in checkpoint_steps(output)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return folder


def write_rng_state(folder: Path, rank: int) -> None:
    """This process's torch / CUDA / numpy / python generator states, as safetensors + JSON."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors.update({f"cuda.{index}": state for index, state in enumerate(torch.cuda.get_rng_state_all())})
    name, keys, position, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    with atomic_file(folder / f"rng-rank{rank}.safetensors") as tmp:
        save_file(tensors, str(tmp))
    rest = {
        "numpy": [name, keys.tolist(), position, has_gauss, cached],
        "python": [version, list(internal), gauss_next],
    }
    with atomic_file(folder / f"rng-rank{rank}.json") as tmp:
        tmp.write_text(json.dumps(rest))


def flatten_optimizer_state(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split a (name-keyed) optimizer state dict into tensors and JSON data; tensors become ``{"tensor": key}``."""
    tensors: dict[str, torch.Tensor] = {}
    entries: dict[str, dict[str, Any]] = {}
    for name, values in state["state"].items():
        entries[name] = {}
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{name}/{key}"] = value.detach().cpu().contiguous()
                entries[name][key] = {"tensor": f"{name}/{key}"}
            else:
                entries[name][key] = value
    return tensors, {"state": entries, "param_groups": state["param_groups"]}


# ---------------------------------------------------------------------------- loading


def read_checkpoint(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``state.json`` and the config data of a checkpoint folder, checked."""
    state = _read_json(folder / STATE)
    if state.get("format") != FORMAT or state.get("version") != VERSION:
        raise UserError(f"{folder} is not a training checkpoint of this version ({FORMAT} v{VERSION})")
    try:
        config = yaml.safe_load((folder / CONFIG).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise UserError(f"cannot read {folder / CONFIG}: {' '.join(str(error).split())}") from None
    return state, config


def load_weights(folder: Path) -> dict[str, torch.Tensor]:
    return _load_tensors(folder / WEIGHTS)


def load_optimizer(folder: Path, module: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Restore the optimizer state of ``folder`` into ``optimizer`` (of the prepared ``module``)."""
    tensors = _load_tensors(folder / OPTIMIZER_TENSORS)
    rest = _read_json(folder / OPTIMIZER_REST)
    state = {
        name: {
            key: tensors[value["tensor"]] if isinstance(value, dict) and "tensor" in value else value
            for key, value in values.items()
        }
        for name, values in rest["state"].items()
    }
    groups = [
        {key: tuple(value) if isinstance(value, list) and key != "params" else value for key, value in group.items()}
        for group in rest["param_groups"]
    ]
    set_optimizer_state_dict(module, optimizer, {"state": state, "param_groups": groups}, options=FULL)


def load_scheduler(folder: Path, scheduler: torch.optim.lr_scheduler.LRScheduler) -> None:
    scheduler.load_state_dict(_read_json(folder / SCHEDULER))


def restore_rng_state(folder: Path, rank: int) -> bool:
    """Restore this process's generator states; False when the checkpoint has none for ``rank``."""
    path = folder / f"rng-rank{rank}.safetensors"
    if not path.is_file():
        return False
    tensors = _load_tensors(path)
    rest = _read_json(folder / f"rng-rank{rank}.json")
    torch.set_rng_state(tensors["torch"])
    if torch.cuda.is_available():
        states = [tensors[f"cuda.{index}"] for index in range(torch.cuda.device_count()) if f"cuda.{index}" in tensors]
        torch.cuda.set_rng_state_all(states)
    name, keys, position, has_gauss, cached = rest["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached))
    version, internal, gauss_next = rest["python"]
    random.setstate((version, tuple(internal), gauss_next))
    return True


# ---------------------------------------------------------------------------- helpers


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU copies safe for safetensors (which refuses tensors sharing memory)."""
    return {name: tensor.detach().cpu().clone().contiguous() for name, tensor in tensors.items()}


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise UserError(f"cannot read {path}: {error}") from None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise UserError(f"cannot read {path}: {error}") from None


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1) + "\n")
