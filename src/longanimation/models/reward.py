"""Color Consistency Reward (CCR), sec. 3.2.3, eq. 5.

    r = sum_{m=1..M} ( ||k_ref^m - k^m||_2^2 + ||v_ref^m - v^m||_2^2 )

where k^m, v^m are the memory model's summary-token keys/values at memory
layer m for the generated clip, and k_ref^m, v_ref^m the same for the
ground-truth clip. r is a distance (0 for identical clips); the RL stage
maximises -r. Summary tokens only line up when both clips are cut into the
same chunks, so the generated clip is chunked by the reference clip's plan.
The squared norms are summed over all summary tokens and channels, as eq. 5.
"""

from __future__ import annotations

import torch

from ..errors import UserError
from .memory_model import LongVideoMemoryModel


def color_consistency_distance(
    memory_model: LongVideoMemoryModel, generated: torch.Tensor, reference: torch.Tensor
) -> torch.Tensor:
    """Eq. 5 per clip: ``generated`` and ``reference`` ``(B, T, 3, H, W)`` in [0, 1] -> ``(B,)``, lower is better.

    Runs under whatever grad mode the caller set (the RL stage uses ``torch.no_grad()``).
    """
    if generated.ndim != 5 or generated.shape[:3] != reference.shape[:3]:
        raise UserError(
            f"reward clips must be (B, T, 3, H, W) with matching B and T, got {tuple(generated.shape)} "
            f"and {tuple(reference.shape)}"
        )
    distances = []
    for generated_clip, reference_clip in zip(generated, reference):
        target = memory_model.encode_clip(reference_clip)
        produced = memory_model.encode_clip(generated_clip, plan=target.plan).view
        distance = sum(
            (a.float() - b.float()).square().sum()
            for pair in ((target.view.keys, produced.keys), (target.view.values, produced.values))
            for a, b in zip(*pair)
        )
        distances.append(distance)
    return torch.stack(distances)


def color_consistency_reward(
    memory_model: LongVideoMemoryModel, generated: torch.Tensor, reference: torch.Tensor
) -> torch.Tensor:
    """``-color_consistency_distance``: the quantity the CCR stage maximises (eq. 2 with r of eq. 5)."""
    return -color_consistency_distance(memory_model, generated, reference)
