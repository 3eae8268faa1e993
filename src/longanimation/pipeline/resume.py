"""Resumable runs: what must survive a ``kill -9`` between two segments.

After every finished segment the pipeline saves, next to its output frames,
the state needed to continue exactly where it stopped:

* the index of the next segment job and a fingerprint of the inputs and
  options (a resume with other inputs is refused);
* the streaming memory of the long-video model (:class:`MemoryState`);
* the overlap latents Color Consistency Fusion keeps for the next segment;
* for the autoregressive paradigm, the last generated frame (next reference);
* for tracked flat colors, the regions of the last finished frame and their colors;
* for the correspondence, the last finished frame and its line art.

Noise is drawn from a generator seeded by (seed, job index), so no RNG state
needs saving. Everything is safetensors + JSON and written atomically: the
state on disk is always the one of a fully written segment. The tensors of
each state go to their own file (``state-JOB.safetensors``) and ``state.json``,
which names them, is replaced last with one rename, so a kill at any instant
leaves a complete state. A run saves its first state (next job 0) before it
writes any frame; a resume re-generates every frame of the jobs from the
saved one on, byte-identical (each job's output is a function of the state).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..atomic import atomic_file
from ..errors import UserError
from ..models.memory_state import MemoryState

STATE_DIR = ".longanimation-state"
STATE_VERSION = 3
STATE_FILE = "state.json"


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


def run_fingerprint(
    sketches: np.ndarray, keyframes: Mapping[int, np.ndarray], prompt: str, options, preset: str, weights_digest: str
) -> str:
    """The key of a run: line art (an array or a FrameStore), keyframes, prompt, resolved options, model."""
    return fingerprint(
        frames_digest(sketches), *[a for k in sorted(keyframes) for a in (str(k), keyframes[k])], prompt,
        json.dumps(asdict(options), sort_keys=True), preset, weights_digest,
    )


def has_state(output: Path) -> bool:
    """Whether ``output`` holds the saved state of an unfinished run."""
    return (Path(output) / STATE_DIR / STATE_FILE).is_file()


def _read_meta(output: Path, key: str) -> dict:
    folder = Path(output) / STATE_DIR
    if not has_state(output):
        raise UserError(f"nothing to resume in {output}: no saved state (start without --resume)")
    try:
        meta = json.loads((folder / STATE_FILE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"cannot resume from {folder}: {error}") from None
    if not isinstance(meta, dict) or meta.get("version") != STATE_VERSION or meta.get("fingerprint") != key:
        raise UserError(
            f"cannot resume in {output}: it was started with other inputs, options or model "
            "(start again without --resume, or use another output folder)"
        )
    return meta


def check_state(output: Path, key: str) -> int:
    """Refuse (:class:`UserError`) unless ``output`` holds a state saved under ``key``; returns its next job."""
    return int(_read_meta(output, key)["next_job"])


def frames_digest(frames) -> str:
    """:func:`fingerprint` of a stack of frames read one at a time (an array or a FrameStore)."""
    digest = hashlib.sha256(str(tuple(frames.shape)).encode())
    for frame in frames:
        digest.update(np.ascontiguousarray(frame).tobytes())
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
    correspondence: dict[str, np.ndarray] = field(default_factory=dict)  # the ColorCarry's state_dict()

    def save(self, output: Path, key: str) -> None:
        """Write the state into ``output/.longanimation-state``: tensors first, then ``state.json`` naming them."""
        tensors = dict(self.fusion)
        meta: dict = {"version": STATE_VERSION, "fingerprint": key, "next_job": self.next_job}
        if self.memory is not None:
            memory_tensors, meta["memory"] = self.memory.state_dict()
            tensors |= {f"memory.{name}": tensor for name, tensor in memory_tensors.items()}
        if self.reference is not None:
            tensors["reference"] = self.reference
            tensors["reference_sketch"] = self.reference_sketch
        for prefix, arrays in (("flat_colors", self.flat_colors), ("correspondence", self.correspondence)):
            tensors |= {f"{prefix}.{name}": torch.from_numpy(np.ascontiguousarray(a)) for name, a in arrays.items()}
        folder = Path(output) / STATE_DIR
        meta["tensors"] = f"state-{self.next_job}.safetensors"
        path = folder / meta["tensors"]
        try:
            with atomic_file(path) as tmp:
                save_file({name: t.contiguous() for name, t in tensors.items()}, str(tmp))
            path = folder / STATE_FILE
            with atomic_file(path) as tmp:  # the switch to the new state: one rename
                tmp.write_text(json.dumps(meta, indent=2) + "\n")
        except (OSError, SafetensorError) as error:  # disk full, permission lost: name the file
            raise OSError(getattr(error, "errno", None) or errno.EIO, getattr(error, "strerror", None) or str(error),
                          str(path)) from None
        for old in folder.glob("state-*.safetensors"):  # earlier states; a failure here loses nothing
            if old.name != meta["tensors"]:
                with contextlib.suppress(OSError):
                    old.unlink(missing_ok=True)

    @classmethod
    def load(cls, output: Path, key: str, device: torch.device | str | None = None) -> RunState:
        """Read the state of an interrupted run into ``output``; refuse one made from other inputs.

        ``device``: where the memory and fusion tensors go (the run's execution device; default CPU).
        """
        folder = Path(output) / STATE_DIR
        meta = _read_meta(output, key)
        try:
            tensors = load_file(str(folder / Path(str(meta.get("tensors", "state.safetensors"))).name))
        except (OSError, SafetensorError) as error:
            raise UserError(f"cannot resume from {folder}: {error}") from None
        memory = None
        if "memory" in meta:
            memory_tensors = {
                n.removeprefix("memory."): t.to(device) for n, t in tensors.items() if n.startswith("memory.")
            }
            memory = MemoryState.from_state_dict(memory_tensors, meta["memory"])
        return cls(
            next_job=int(meta["next_job"]),
            memory=memory,
            fusion={name: t.to(device) for name, t in tensors.items() if name.startswith("fusion.")},
            reference=tensors.get("reference"),
            reference_sketch=tensors.get("reference_sketch"),
            flat_colors=_arrays(tensors, "flat_colors."),
            correspondence=_arrays(tensors, "correspondence."),
        )


def _arrays(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, np.ndarray]:
    return {name.removeprefix(prefix): t.numpy() for name, t in tensors.items() if name.startswith(prefix)}
