"""Build the model a run starts from (:class:`~longanimation.training.config.ModelConfig`)."""

from __future__ import annotations

from ..errors import UserError
from ..models.checkpoint import refuse_pickle
from ..models.longanimation_model import LongAnimationModel
from ..models.memory_model import LongVideoMemoryModel
from .config import ModelConfig
from .stages import STAGES


def load_model(config: ModelConfig, stage: str) -> LongAnimationModel:
    """The starting model: a saved folder, or a preset (random, or around a CogVideoX snapshot).

    Pickle files are refused before anything is read. Stages outside the
    paper's three train parts the paper takes pretrained: tiny preset only.
    """
    for path in (config.init_from, config.backbone, config.memory_model):
        if path is not None:
            refuse_pickle(path)
    if config.init_from is not None:
        model = LongAnimationModel.from_pretrained(config.init_from, backbone=config.backbone)
    elif config.backbone is not None:
        model = LongAnimationModel.from_parts(
            config.backbone, preset=config.preset, memory_model=config.memory_model, seed=config.seed
        )
    elif config.preset == "paper":
        raise UserError("preset paper needs model.backbone: the CogVideoX1.5-5B-I2V folder (diffusers layout)")
    else:
        model = LongAnimationModel.from_preset(config.preset, seed=config.seed)
        if config.memory_model is not None:
            model.memory_model = LongVideoMemoryModel.from_pretrained(config.memory_model)
    if not STAGES[stage].paper and model.preset != "tiny":
        raise UserError(
            f"stage {stage} trains a part the paper takes pretrained; it exists for the tiny preset only "
            f"(this model is preset {model.preset})"
        )
    return model
