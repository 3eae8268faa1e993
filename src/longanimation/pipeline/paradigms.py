"""Long-video paradigms (sec. 3.3 and the baselines of Table 1): what conditions each segment of a run.

* ``memory`` (the paper, fig. 2(b,c)): every segment of a run takes the run's
  keyframe as its reference; the segments after the shot's first read the
  Dynamic Global-Local Memory; overlaps are fused in the late steps (eq. 6).
* ``local-fusion`` (LVCD): the same fixed reference, no memory, and the
  overlap blended at every step.
* ``autoregressive``: the previous segment's last frame (and its line art)
  becomes the next segment's reference.

A paradigm is a strategy of :class:`~longanimation.pipeline.long_animation.LongAnimationPipeline`:
it may adjust the options, picks each segment's reference, and sees each
finished segment. What it keeps between segments lives in the run state, so
a resumed run continues it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from .long_animation import ColorizeOptions, SegmentJob
    from .resume import RunState


class Paradigm:
    """The paper's paradigm: the run's keyframe conditions every segment of the run."""

    name = "memory"

    def resolve(self, options: ColorizeOptions) -> ColorizeOptions:
        """The options this paradigm runs with."""
        return options

    def reference(
        self, job: SegmentJob, keyframe: tuple[np.ndarray, np.ndarray], state: RunState
    ) -> tuple[np.ndarray, np.ndarray]:
        """The segment's reference image and its line art, at model size (``keyframe``: the run's)."""
        return keyframe

    def finish_segment(self, job: SegmentJob, frames: np.ndarray, sketches: np.ndarray, state: RunState) -> None:
        """Called with each segment's decoded ``frames`` and their model-size line art ``sketches``."""


class LocalFusion(Paradigm):
    """LVCD's local fusion: fixed reference, no memory, overlaps blended at every step."""

    name = "local-fusion"

    def resolve(self, options: ColorizeOptions) -> ColorizeOptions:
        return replace(options, memory="none", fusion_steps=options.num_inference_steps)


class Autoregressive(Paradigm):
    """Each segment after a run's first is conditioned on the previous segment's last frame."""

    name = "autoregressive"

    def reference(
        self, job: SegmentJob, keyframe: tuple[np.ndarray, np.ndarray], state: RunState
    ) -> tuple[np.ndarray, np.ndarray]:
        if job.segment.index == 0:
            return keyframe
        return state.reference.numpy(), state.reference_sketch.numpy()

    def finish_segment(self, job: SegmentJob, frames: np.ndarray, sketches: np.ndarray, state: RunState) -> None:
        state.reference = torch.from_numpy(frames[-1].copy())
        state.reference_sketch = torch.from_numpy(sketches[-1].copy())


PARADIGMS: dict[str, type[Paradigm]] = {paradigm.name: paradigm for paradigm in (Paradigm, LocalFusion, Autoregressive)}
