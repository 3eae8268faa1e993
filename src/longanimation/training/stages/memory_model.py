"""Stage ``memory-model`` (tiny preset only): teach the long-video memory model to keep colors.

The paper uses a pretrained Video-XL; the tiny preset starts random. DGLM
(eq. 4) and the reward (eq. 5) read only the summary tokens' keys and values
at the M memory layers, so the self-supervised objective is put exactly
there: a small head reads one chunk's ``s`` summary tokens' KV -- the
concatenation ``[k^1 .. k^M, v^1 .. v^M]`` of every token (``2 M kv_width s``
values) -- and must redraw the colors of the chunk they summarise, as the
chunk's mean frame area-downsampled to ``g x g`` RGB (a color thumbnail):

    L = mean over clips, chunks n, pixels || head([k_n, v_n]) - thumb(chunk_n) ||^2

Clips are the training segments, chunked by the model's own dynamic plan
(:meth:`~longanimation.models.memory_model.LongVideoMemoryModel.encode_clip`).
The head is training-only: it lives in the stage (and its checkpoints), not
in the saved model. Parameters that do not reach the summary KV (CLIP's last
layer, the LM's embedding table and final norm, the last memory layer's
query/MLP) get no gradient; DDP is told so.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..batches import ClipBatch
from .core import StepContext, TrainingStage


class ColorThumbnailHead(nn.Sequential):
    """Chunk summary KV ``(N, 2 M kv_width s)`` -> logits of the chunk color thumbnails ``(N, 3 g g)``."""

    def __init__(self, in_features: int, width: int, thumbnail_size: int) -> None:
        super().__init__(nn.Linear(in_features, width), nn.GELU(), nn.Linear(width, 3 * thumbnail_size**2))


class MemoryModelStage(TrainingStage):
    """Trains ``memory_model`` (+ the temporary color head)."""

    name = "memory-model"
    trains = ("memory_model",)
    paper = False
    find_unused_parameters = True

    def __init__(self, model, config) -> None:
        super().__init__(model, config)
        memory = model.memory_model.config
        settings = config.memory_model
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.color_head = ColorThumbnailHead(
                2 * len(memory.memory_layers) * memory.kv_width * memory.summaries_per_chunk,
                settings.head_width,
                settings.thumbnail_size,
            )

    def run_step(self, batch: ClipBatch, context: StepContext) -> dict[str, float]:
        return self.backward_once(context, batch.target_frames())

    def forward(self, clips: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``clips`` ``(B, F, 3, H, W)`` in [0, 1] -> thumbnail reconstruction loss."""
        size = self.config.memory_model.thumbnail_size
        losses = []
        for frames in clips:
            summary = self.memory_model.encode_clip(frames)
            features = torch.cat([*summary.view.keys, *summary.view.values], dim=-1)[0]
            features = features.reshape(len(summary.plan), -1)  # one row per chunk: its s tokens
            predicted = torch.sigmoid(self.color_head(features.float()))
            thumbnails = F.adaptive_avg_pool2d(frames.float(), size).flatten(1)
            targets = torch.stack([chunk.mean(dim=0) for chunk in thumbnails.split(list(summary.plan))])
            losses.append(F.mse_loss(predicted, targets))
        return torch.stack(losses).mean(), {}
