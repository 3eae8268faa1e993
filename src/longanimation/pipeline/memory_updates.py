"""How generated frames reach the long-video memory between segments (sec. 3.2.2, 3.3).

* ``streaming`` (ours): each frame enters the memory once, right after its
  segment, so the cost of a segment does not grow with the shot and the
  memory is part of the resumable run state;
* ``reencode`` (the authors' release, a baseline): the whole history is
  encoded again before every segment; it keeps every generated frame in RAM,
  so such a run cannot be resumed.

Both pin the keyframes first and clear the local view when a run starts:
the local memory is the latest segment of *this* run, another run's would
leak its direction. :class:`NoMemory` serves ``--memory none``.

``on_device`` (optional) is a context in which the memory model is on the
execution device (:meth:`~longanimation.pipeline.placement.Placement.using`):
each strategy enters it only around the calls that run the network, so an
offloaded memory model comes to the device once per segment, not per step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager

import torch

from ..models.conditioning import start_memory
from ..models.memory_model import LongVideoMemoryModel
from .resume import RunState


class NoMemory:
    """No memory at all (``--memory none`` and the local-fusion paradigm)."""

    name = "none"
    resumable = True

    def begin(self, state: RunState) -> None:
        """Before the first segment (of a fresh or a resumed run)."""

    def before_segment(self, state: RunState, first_of_run: bool) -> None:
        """Before a segment is denoised."""

    def after_segment(self, state: RunState, fresh: torch.Tensor) -> None:
        """With the segment's fresh frames ``(N, 3, H, W)`` in [0, 1]."""


class StreamingMemory(NoMemory):
    """Each generated frame is appended once, after its segment."""

    name = "streaming"

    def __init__(
        self,
        memory_model: LongVideoMemoryModel,
        keyframes: torch.Tensor,
        on_device: Callable[[], AbstractContextManager] = contextlib.nullcontext,
    ) -> None:
        self.memory_model = memory_model
        self.keyframes = keyframes  # (K, 3, H, W) in [0, 1], pinned
        self.on_device = on_device

    def begin(self, state: RunState) -> None:
        if state.memory is None:
            with self.on_device():
                state.memory = start_memory(self.memory_model, self.keyframes)

    def before_segment(self, state: RunState, first_of_run: bool) -> None:
        if first_of_run:
            self.memory_model.clear_local(state.memory)

    def after_segment(self, state: RunState, fresh: torch.Tensor) -> None:
        with self.on_device():
            self.memory_model.append(state.memory, fresh)


class ReencodedMemory(StreamingMemory):
    """The whole history is encoded again before every segment; the last segment becomes the local view."""

    name = "reencode"
    resumable = False

    def begin(self, state: RunState) -> None:
        self.history: list[torch.Tensor] = []  # never resumed: a run always begins empty
        super().begin(state)

    def before_segment(self, state: RunState, first_of_run: bool) -> None:
        if self.history:
            with self.on_device():
                state.memory = start_memory(self.memory_model, self.keyframes)
                if len(self.history) > 1:
                    self.memory_model.append(state.memory, torch.cat(self.history[:-1]))
                self.memory_model.append(state.memory, self.history[-1])
        super().before_segment(state, first_of_run)

    def after_segment(self, state: RunState, fresh: torch.Tensor) -> None:
        self.history.append(fresh)


MEMORY_UPDATES: dict[str, type[StreamingMemory]] = {update.name: update for update in (StreamingMemory, ReencodedMemory)}
