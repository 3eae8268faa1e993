"""What every training stage shares: trainable parts as submodules, the frozen model beside them.

A stage is an ``nn.Module`` whose *registered* submodules are exactly what
it trains (plus training-only heads): the model parts named in its
``trains`` (attribute paths such as ``"backbone.transformer"``) are
registered by :class:`TrainingStage` itself, so the class declares what it
trains and :data:`~longanimation.training.stages.STAGES` is the only list of
stages. The whole
:class:`~longanimation.models.longanimation_model.LongAnimationModel` is held
as a plain attribute, so ``accelerator.prepare(stage)`` wraps (DDP) and
syncs only the trainable parameters while the frozen parts stay plain
modules, and ``stage.state_dict()`` is the checkpoint's trainable weights.

The trainer calls :meth:`TrainingStage.run_step` once per micro-step with a
:class:`StepContext`; gradient-carrying forward passes must go through
``context.module`` (the prepared stage, whose ``forward`` each stage
defines), so that DDP sees them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import operator
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from ...models.longanimation_model import LongAnimationModel
from ..batches import ClipBatch
from ..config import TrainConfig


@dataclasses.dataclass
class StepContext:
    """What the trainer lends a stage for one micro-step.

    ``module``: the prepared stage (call it for forward passes that train);
    ``generator``: CPU generator seeded by (seed, rank, step) -- all of the
    step's randomness comes from it; ``backward(loss)``: backpropagate (the
    trainer scales by the accumulation steps); ``syncing(sync)``: a context
    for one forward + backward, with the gradient all-reduce on (``True``)
    or deferred; ``final``: this is the step's last micro-step, whose last
    backward must sync.
    """

    module: nn.Module
    generator: torch.Generator
    backward: Callable[[torch.Tensor], None]
    syncing: Callable[[bool], contextlib.AbstractContextManager]
    final: bool


class TrainingStage(nn.Module):
    """Base class: registered submodules train, ``self.model`` is the (mostly frozen) whole model."""

    name: ClassVar[str]
    trains: ClassVar[tuple[str, ...]]  # attribute paths of the model parts this stage trains
    paper: ClassVar[bool] = True  # False: the paper takes these parts pretrained (tiny preset only)
    find_unused_parameters: ClassVar[bool] = False  # DDP: some trainable parameters get no gradient

    def __init__(self, model: LongAnimationModel, config: TrainConfig) -> None:
        super().__init__()
        object.__setattr__(self, "model", model)  # not a submodule: never wrapped, synced or saved
        self.config = config
        for name, part in self.trained_parts(model).items():
            self.add_module(name, part)

    @classmethod
    def trained_parts(cls, model: LongAnimationModel) -> dict[str, nn.Module]:
        """The model parts of ``trains``, keyed by their last attribute name (``"transformer"``)."""
        return {path.rsplit(".", 1)[-1]: operator.attrgetter(path)(model) for path in cls.trains}

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def freeze_all_but_trained(self) -> None:
        """Frozen model in eval mode; the trained parts (and heads) require grad and train."""
        self.model.requires_grad_(False)
        self.model.eval()
        self.requires_grad_(True)
        for child in self.children():
            child.train()

    def run_step(self, batch: ClipBatch, context: StepContext) -> dict[str, float]:
        """One micro-step: forward, backward; returns the metrics to log (``loss`` first)."""
        raise NotImplementedError

    @staticmethod
    def backward_once(context: StepContext, *inputs: Any) -> dict[str, float]:
        """The common micro-step: ``loss, metrics = module(*inputs)``, one backward."""
        with context.syncing(context.final):
            loss, metrics = context.module(*inputs)
            context.backward(loss)
        return {"loss": loss.item(), **{name: float(value) for name, value in metrics.items()}}
