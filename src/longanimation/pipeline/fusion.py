"""Color Consistency Fusion (CCF, sec. 3.3, fig. 3, eq. 6).

Segments overlap. While segment ``i`` is denoised, the overlapping latent
frames are blended with the latents that segment ``i-1`` had at the *same*
denoising step, but only in the late steps (t in [t_st, 0]); in the early
steps (t in [T, t_st]) nothing is blended:

    z_{i,t}^k = k * alpha * z_{i,t}^k + (1 - k * alpha) * z_{i-1,t}^{L-c+k},   alpha = 1 / (c + 1)   (eq. 6)

for the ``c`` overlapping latent frames k = 1..c (``L`` latent frames a
segment). Frames nearer the boundary (small k) lean on the previous segment.
With c = 4 this gives the official weights 0.8/0.6/0.4/0.2 on the previous
segment's last four latents. Segments are planned so that latent k of the new
segment and latent ``L-c+k`` of the previous one cover the same pixel frames
(see :mod:`longanimation.pipeline.planning`); the new segment's first latent
(a single frame in CogVideoX's causal VAE) is not blended. In the decoded
video the overlap takes half its frames from each segment
(:func:`stitch_overlap`).

Latents are laid out (B, T_latent, C, H, W) as in diffusers' CogVideoX.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


def shared_latent_frames(shared_frames: int, temporal_compression: int) -> int:
    """Aligned latent frames shared by two segments that share ``shared_frames`` pixel frames.

    The compression is the backbone VAE's (4 for CogVideoX, 1 for the tiny
    VAE); it has no default so that the blended latents and the recorded tails
    are always counted on the same grid.
    """
    return max(shared_frames - 1, 0) // temporal_compression


def fusion_weights(overlap_latents: int) -> torch.Tensor:
    """Weights k * alpha of the *new* segment's latents k = 1..c, alpha = 1 / (c + 1) (eq. 6)."""
    alpha = 1.0 / (overlap_latents + 1)
    return torch.arange(1, overlap_latents + 1, dtype=torch.float64) * alpha


@dataclass
class ColorConsistencyFusion:
    """Stores a segment's tail latents at each late step and blends the next segment's head with them.

    ``fusion_steps`` is t_st counted in sampling steps: blending happens in the
    last ``fusion_steps`` of ``num_steps`` steps (paper: 20 of 50). Set it to
    ``num_steps`` to blend at every step (the local-fusion paradigm of LVCD),
    or to 0 to disable fusion. ``temporal_compression`` is the backbone VAE's.
    """

    num_steps: int
    fusion_steps: int
    temporal_compression: int
    stored: dict[int, torch.Tensor] = field(default_factory=dict)
    _next: dict[int, torch.Tensor] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if not 0 <= self.fusion_steps <= self.num_steps:
            raise ValueError(f"fusion_steps must lie in [0, {self.num_steps}], got {self.fusion_steps}")

    def is_late(self, step: int) -> bool:
        """True when step ``step`` (0-based, 0 = noisiest) is in the fusion window [t_st, 0]."""
        return step >= self.num_steps - self.fusion_steps

    def blend(self, latents: torch.Tensor, step: int, shared_frames: int) -> torch.Tensor:
        """Apply eq. 6 to the head of ``latents`` after step ``step``, if a stored tail exists."""
        previous = self.stored.get(step)
        if previous is None or not self.is_late(step) or shared_frames <= 0:
            return latents
        count = min(shared_latent_frames(shared_frames, self.temporal_compression), previous.shape[1])
        if count == 0:
            return latents
        weights = fusion_weights(count).to(latents.dtype).view(1, count, 1, 1, 1).to(latents.device)
        head = latents[:, 1 : 1 + count]
        tail = previous[:, previous.shape[1] - count :].to(latents)
        fused = latents.clone()
        fused[:, 1 : 1 + count] = weights * head + (1 - weights) * tail
        return fused

    def begin_segment(self) -> None:
        """Forget the tails of the segment before the previous one; call before denoising a segment."""
        self._next = {}

    def record(self, latents: torch.Tensor, step: int, tail_latents: int) -> None:
        """Keep the last ``tail_latents`` latent frames after late step ``step`` for the next segment."""
        if self.is_late(step) and tail_latents > 0:
            self._next[step] = latents[:, latents.shape[1] - tail_latents :].detach().clone()

    def end_segment(self) -> None:
        """Make the tails recorded during this segment the ones the next segment blends with."""
        self.stored = self._next

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Stored tails by step, for resumable runs."""
        return {f"fusion.step{step}": tensor for step, tensor in self.stored.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.stored = {
            int(name.removeprefix("fusion.step")): tensor for name, tensor in state.items() if name.startswith("fusion.step")
        }


def stitch_overlap(shared_frames: int) -> int:
    """How many of the ``shared_frames`` frames the final video takes from the previous segment.

    Half of the overlap comes from each segment (sec. 3.3); the odd frame goes
    to the previous segment, which was denoised without a blend at its boundary.
    """
    return (shared_frames + 1) // 2
