"""The training stages, one module each (see :mod:`longanimation.training.config` for the chain)."""

from __future__ import annotations

from .base import BaseStage
from .core import StepContext, TrainingStage
from .memory import MemoryStage
from .memory_model import MemoryModelStage
from .reward import RewardStage
from .sketchdit import SketchDiTStage
from .vae import VAEStage

STAGE_CLASSES: dict[str, type[TrainingStage]] = {
    stage.name: stage for stage in (VAEStage, BaseStage, MemoryModelStage, SketchDiTStage, MemoryStage, RewardStage)
}

__all__ = ["STAGE_CLASSES", "StepContext", "TrainingStage"]
