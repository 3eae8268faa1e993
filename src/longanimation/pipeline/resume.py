"""Resumable runs: what must survive a ``kill -9`` between two segments.

After every finished segment the pipeline saves, next to its output frames,
the state needed to continue exactly where it stopped:

* the index of the next segment job and a fingerprint of the inputs and
  options (a resume with other inputs is refused);
* the streaming memory of the long-video model (:class:`MemoryState`);
* the overlap latents Color Consistency Fusion keeps for the next segment;
* for the autoregressive paradigm, the last generated frame (next reference);
* for tracked flat colors, the regions of the last finished frame and their colors.

Noise is drawn from a generator seeded by (seed, job index), so no RNG state
needs saving. Everything is safetensors + JSON and written atomically: the
state on disk is always the one of a fully written segment.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..atomic import atomic_dir
from ..errors import UserError
from ..models.memory_state import MemoryState

STATE_DIR = ".longanimation-state"
STATE_VERSION = 2


def fingerprint(*parts: bytes | str | np.ndarray) -> str:
    """SHA-256 over the inputs and options that determine a run's output."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            digest.update(str((part.shape, part.dtype.str)).encode())
            part = np.ascontiguousarray(part).tobytes()
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\x00")
    return digest.hexdigest()


@dataclass
class RunState:
    """Progress of a colorization run between two segment jobs."""

    next_job: int = 0
    memory: MemoryState | None = None
    fusion: dict[str, torch.Tensor] = field(default_factory=dict)
    reference: torch.Tensor | None = None  # autoregressive paradigm: (H, W, 3) uint8 next reference
    reference_sketch: torch.Tensor | None = None  # its line art (H, W) bool
    flat_colors: dict[str, np.ndarray] = field(default_factory=dict)  # FlatColors.state_dict()

    def save(self, output: Path, key: str) -> None:
        """Write the state into ``output/.longanimation-state`` (replaced atomically)."""
        tensors = dict(self.fusion)
        meta: dict = {"version": STATE_VERSION, "fingerprint": key, "next_job": self.next_job}
        if self.memory is not None:
            memory_tensors, meta["memory"] = self.memory.state_dict()
            tensors |= {f"memory.{name}": tensor for name, tensor in memory_tensors.items()}
        if self.reference is not None:
            tensors["reference"] = self.reference
            tensors["reference_sketch"] = self.reference_sketch
        tensors |= {f"flat_colors.{name}": torch.from_numpy(array) for name, array in self.flat_colors.items()}
        with atomic_dir(output / STATE_DIR) as tmp:
            save_file({name: t.contiguous() for name, t in tensors.items()}, str(tmp / "state.safetensors"))
            (tmp / "state.json").write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, output: Path, key: str) -> RunState:
        """Read the state of an interrupted run into ``output``; refuse one made from other inputs."""
        folder = output / STATE_DIR
        if not (folder / "state.json").is_file():
            raise UserError(f"nothing to resume in {output}: no saved state (start without --resume)")
        try:
            meta = json.loads((folder / "state.json").read_text())
            tensors = load_file(str(folder / "state.safetensors"))
        except (OSError, json.JSONDecodeError, SafetensorError) as error:
            raise UserError(f"cannot resume from {folder}: {error}") from None
        if meta.get("version") != STATE_VERSION or meta.get("fingerprint") != key:
            raise UserError(
                f"cannot resume in {output}: it was started with other inputs, options or model "
                "(start again without --resume, or use another output folder)"
            )
        memory = None
        if "memory" in meta:
            memory_tensors = {n.removeprefix("memory."): t for n, t in tensors.items() if n.startswith("memory.")}
            memory = MemoryState.from_state_dict(memory_tensors, meta["memory"])
        return cls(
            next_job=int(meta["next_job"]),
            memory=memory,
            fusion={name: t for name, t in tensors.items() if name.startswith("fusion.")},
            reference=tensors.get("reference"),
            reference_sketch=tensors.get("reference_sketch"),
            flat_colors={n.removeprefix("flat_colors."): t.numpy() for n, t in tensors.items() if n.startswith("flat_colors.")},
        )
