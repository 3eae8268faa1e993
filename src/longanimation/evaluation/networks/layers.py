"""Building blocks shared by the metric networks: frozen batch norm and checked loading."""

from __future__ import annotations

import os

import torch
from torch import nn

from ...models.checkpoint import load_state_dict_checked, refuse_pickle


class FrozenBatchNorm(nn.Module):
    """Batch normalisation with fixed statistics, for 2-D and 3-D feature maps (inference only).

    Its state-dict keys are ``weight``, ``bias``, ``running_mean`` and
    ``running_var``: those of ``nn.BatchNorm2d``/``3d`` without the training
    counter ``num_batches_tracked``.
    """

    def __init__(self, channels: int, eps: float):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(channels))
        self.register_buffer("bias", torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * torch.rsqrt(self.running_var + self.eps)
        shift = self.bias - self.running_mean * scale
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * scale.view(shape) + shift.view(shape)


def load_network(network: nn.Module, weights: str | os.PathLike, device: torch.device | str) -> nn.Module:
    """Load a local safetensors file strictly into ``network``; returns it frozen, in eval mode, on ``device``.

    Pickle checkpoints are refused; missing, unexpected or mis-shaped tensors
    raise :class:`~longanimation.errors.UserError` naming them.
    """
    refuse_pickle(weights)
    load_state_dict_checked(network, weights)
    return network.to(device).eval().requires_grad_(False)
