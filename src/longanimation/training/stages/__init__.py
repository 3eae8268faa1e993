"""The training stages, one module each, and :data:`STAGES`, the one registry of them.

The order is the tiny preset's chain (``configs/train/tiny-*.yaml``): the
stages the paper takes pretrained (``paper = False``: VAE, backbone, memory
model) first, then the paper's three (sec. 4.1).
"""

from __future__ import annotations

from .base import BaseStage
from .core import StepContext, TrainingStage
from .memory import MemoryStage
from .memory_model import MemoryModelStage
from .reward import RewardStage
from .sketchdit import SketchDiTStage
from .vae import VAEStage

STAGES: dict[str, type[TrainingStage]] = {
    stage.name: stage for stage in (VAEStage, BaseStage, MemoryModelStage, SketchDiTStage, MemoryStage, RewardStage)
}

__all__ = ["STAGES", "StepContext", "TrainingStage"]
