"""Stage ``memory`` (the paper's stage 2, sec. 3.2.2 and 4.1): train DGLM, SketchDiT frozen from stage 1.

The same diffusion objective as stage 1 (eq. 1 through eq. 3), now with
``S' = S + DGLM(S, memory)`` (eq. 4) -- fig. 2(c), the segments after the
first. The memory is built from the clip's history exactly as inference
builds it from generated frames (:meth:`~longanimation.training.batches.ClipBatch.memory_inputs`
through :mod:`longanimation.models.conditioning`: reference pinned as the
keyframe, history streamed in segment-sized appends, global view = all, local
view = the latest append), by the frozen memory
model under ``no_grad``. The paper trains on ground-truth history: the
memory of a clip is the KV of its real past frames.
"""

from __future__ import annotations

from typing import Any

from ..batches import ClipBatch
from .sketchdit import SketchConditionedStage


def append_frames(model, config) -> int:
    """Frames per memory append: the config's, else the fresh frames of a segment (F - C) at inference."""
    if config.memory.append_frames is not None:
        return config.memory.append_frames
    fresh = config.data.segment_frames - model.segment.overlap
    return fresh if fresh > 0 else config.data.segment_frames


class MemoryStage(SketchConditionedStage):
    """Stage 2: DGLM trains; backbone, SketchDiT and the memory model are frozen."""

    name = "memory"
    trains = ("dglm",)  # stage 2: DGLM, 10k steps

    def memory_inputs(self, batch: ClipBatch) -> dict[str, Any]:
        return batch.memory_inputs(self.model.memory_model, append_frames(self.model, self.config))
