"""LongAnimationPipeline: colorize a long line-art shot from one or more keyframes.

Reads top to bottom like the paper's inference (fig. 2(b,c), sec. 3.3):

1. line art and keyframes are mapped to the model's resolution
   (:mod:`~longanimation.pipeline.framing`), consecutive identical drawings
   (animation on twos/threes) are collapsed to one;
2. the shot is split into *runs*, one per keyframe direction (keyframes may
   sit anywhere), and each run into overlapping segments
   (:mod:`~longanimation.pipeline.planning`);
3. every keyframe is pinned into the streaming memory of the long-video
   model before anything is generated;
4. each segment is denoised by the controlled CogVideoX: the first segment of
   the shot with SketchDiT alone (fig. 2(b)), every later one with SketchDiT +
   DGLM reading the global memory (everything generated so far) and the local
   memory (the latest segment) (fig. 2(c), eq. 3-4); in the late steps its
   overlap latents are blended with the previous segment's (Color Consistency
   Fusion, eq. 6);
5. the decoded frames are brought back to the input's size, where each frame
   takes the colors that dense correspondence between line-art frames carries
   from the keyframe and the frames colored after it, and the model's colors
   only for new content (:mod:`~longanimation.pipeline.correspondence`);
   optionally flattened to one color per closed region of the line art,
   regions optionally followed from their keyframe
   (:mod:`~longanimation.pipeline.flat_colors`); handed to a sink as soon as
   they are final, and the model's frames appended to the memory; the state
   needed to continue is saved so a killed run resumes exactly
   (:mod:`~longanimation.pipeline.resume`).

The memory model only ever sees each frame once (streaming), and its history
is bounded, so the cost of a segment does not grow with the length of the shot.

Comparison paradigms for the paper's tables run through the same code:
``memory`` in none/local/global/both (Table 2), ``fusion_start`` (Table 3),
``paradigm="local-fusion"`` (LVCD: fixed reference, blending at every step,
no memory) and ``paradigm="autoregressive"`` (the previous segment's last
frame becomes the next reference).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import torch
from diffusers import CogVideoXDPMScheduler

from ..data.frame_store import FrameStore
from ..errors import UserError
from ..models.longanimation_model import LongAnimationModel
from .correspondence import CARRIES, ColorCarry
from .framing import Letterbox, model_size_for
from .flat_colors import FlatColors
from .fusion import ColorConsistencyFusion, overlap_latent_frames, stitch_overlap
from .planning import (
    Run,
    Segment,
    drawing_members,
    held_drawing_groups,
    keyframes_by_drawing,
    plan_runs,
    plan_segments,
)
from .resume import RunState, run_fingerprint

MEMORY_MODES = ("none", "local", "global", "both")
MEMORY_UPDATES = ("streaming", "reencode")
PARADIGMS = ("memory", "local-fusion", "autoregressive")


@dataclass(frozen=True)
class ColorizeOptions:
    """Inference settings; ``None`` takes the model preset's default (``SegmentDefaults``)."""

    segment_frames: int | None = None  # F
    overlap: int | None = None  # C: consecutive segments share C + 1 frames
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    fusion_start: int | None = None  # t_st in steps: blend in the last t_st steps; 0 = no fusion
    memory: str = "both"
    # streaming: each frame enters the memory once (cost per segment flat); reencode: the whole
    # history is encoded again before every segment, as the authors' release does (a baseline).
    memory_update: str = "streaming"
    paradigm: str = "memory"
    collapse_held_drawings: bool = True
    seed: int = 0
    height: int | None = None  # model resolution; default: preset area with the shot's aspect ratio
    width: int | None = None
    # Output post-processing (never fed back to the model): one color per closed region of the
    # line art, snapped to the keyframes' colors within palette_tolerance (RGB distance) if given;
    # track_regions: regions followed from their keyframe keep its colors, lines its line colors (flat_colors.TrackedRegions).
    flat_colors: bool = False
    palette_tolerance: float | None = None
    track_regions: bool = False
    # How each frame takes colors from the frames colored before it, at the input's size
    # (correspondence.CARRIES): "flow" carries what the keyframe shows; "none" is the paper's pipeline.
    correspondence: str = "flow"

    def resolved(self, model: LongAnimationModel) -> ColorizeOptions:
        """Fill the defaults from the model's preset and check the combination."""
        import math
        import numbers

        def _check_integer(name: str, value, low: int, high: int | None = None) -> None:
            """``value`` is None (the default) or an integer in [low, high]."""
            integer = isinstance(value, numbers.Integral) and not isinstance(value, bool)
            if value is not None and not (integer and low <= value and (high is None or value <= high)):
                bounds = f"between {low} and {high}" if high is not None else f">= {low}"
                raise UserError(f"{name} must be an integer {bounds}, got {value!r}")

        # Noise seeds are seed * 1_000_003 + job index: keep them in the generator's 64-bit range.
        SEED_LIMIT = 2**43
        defaults = model.segment
        compression = model.backbone.temporal_compression
        # Every number before any work: a bad one must not surface after hours of colorization.
        _check_integer("--steps", self.num_inference_steps, 1, model.backbone.scheduler.config.num_train_timesteps)
        _check_integer("--segment-frames", self.segment_frames, compression + 1)
        _check_integer("--overlap", self.overlap, 0)
        _check_integer("--fusion-start", self.fusion_start, 0)
        _check_integer("model height", self.height, 1)
        _check_integer("model width", self.width, 1)
        _check_integer("--seed", self.seed, -SEED_LIMIT, SEED_LIMIT)
        scale = self.guidance_scale
        if scale is not None and not (isinstance(scale, numbers.Real) and math.isfinite(scale) and scale >= 0):
            raise UserError(f"--guidance-scale must be a finite number >= 0, got {scale}")
        steps = defaults.num_inference_steps if self.num_inference_steps is None else self.num_inference_steps
        # The preset's t_st scaled to the step count (paper: the last 20 of 50 steps).
        default_fusion = round(defaults.fusion_steps * steps / defaults.num_inference_steps)
        options = replace(
            self,
            segment_frames=defaults.frames if self.segment_frames is None else self.segment_frames,
            overlap=defaults.overlap if self.overlap is None else self.overlap,
            num_inference_steps=steps,
            guidance_scale=defaults.guidance_scale if self.guidance_scale is None else self.guidance_scale,
            fusion_start=default_fusion if self.fusion_start is None else self.fusion_start,
        )
        if options.memory not in MEMORY_MODES:
            raise UserError(f"--memory must be one of {', '.join(MEMORY_MODES)}, got {options.memory!r}")
        if options.memory_update not in MEMORY_UPDATES:
            raise UserError(f"memory update must be one of {', '.join(MEMORY_UPDATES)}, got {options.memory_update!r}")
        if options.correspondence not in CARRIES:
            raise UserError(f"--correspondence must be one of {', '.join(CARRIES)}, got {options.correspondence!r}")
        if options.paradigm not in PARADIGMS:
            raise UserError(f"--paradigm must be one of {', '.join(PARADIGMS)}, got {options.paradigm!r}")
        if options.paradigm == "local-fusion":
            options = replace(options, memory="none", fusion_start=options.num_inference_steps)
        if not 0 <= options.fusion_start <= options.num_inference_steps:
            raise UserError(
                f"--fusion-start must lie in [0, {options.num_inference_steps}] (the step count), "
                f"got {options.fusion_start}"
            )
        if (options.segment_frames - 1) % compression or options.overlap % compression:
            raise UserError(
                f"segment frames must be {compression}k+1 and the overlap a multiple of {compression}, "
                f"got {options.segment_frames} and {options.overlap}"
            )
        if options.palette_tolerance is not None and not (options.flat_colors and options.palette_tolerance >= 0):
            raise UserError(f"--palette-tolerance needs --flat and a value >= 0, got {options.palette_tolerance}")
        if options.track_regions and not options.flat_colors:
            raise UserError("--track-regions needs --flat")
        if not 0 <= options.overlap < options.segment_frames - 1:
            raise UserError(f"overlap {options.overlap} must be below segment frames - 1 ({options.segment_frames - 1})")
        return options


class FrameSink(Protocol):
    """Where finished frames go, as soon as they are final (input index, input-size RGB uint8)."""

    def write(self, index: int, frame: np.ndarray) -> None: ...


class ArraySink:
    """Collects the colored shot in memory."""

    def __init__(self, num_frames: int, height: int, width: int):
        self.frames = np.zeros((num_frames, height, width, 3), np.uint8)
        self.written = np.zeros(num_frames, bool)

    def write(self, index: int, frame: np.ndarray) -> None:
        self.frames[index] = frame
        self.written[index] = True


ProgressCallback = Callable[[int, int, int, int], None]  # (job, jobs, step, steps)


@dataclass(frozen=True)
class SegmentJob:
    """One segment of one run, in the order the pipeline generates them."""

    run_index: int
    run: Run
    segment: Segment
    next_segment: Segment | None


def owned_offsets(job: SegmentJob) -> range:
    """Offsets in the segment of the frames it contributes: half of each overlap (sec. 3.3).

    A backward run leaves its first frame (the keyframe) to the forward run.
    """
    segment, following = job.segment, job.next_segment
    first = stitch_overlap(segment.overlap) if segment.index else int(job.run.direction < 0)
    last = segment.end - segment.start
    if following is not None:
        last = following.start + stitch_overlap(following.overlap) - segment.start
    return range(first, last)


def plan_summary(groups: list[int], jobs: list[SegmentJob]) -> list[dict]:
    """Each job as input frame indices: its run, keyframe, direction and the frames it contributes."""
    distinct = sorted(set(groups))
    members = drawing_members(groups)
    summary = []
    for job in jobs:
        frames = [
            frame
            for offset in owned_offsets(job)
            for frame in members[distinct[job.run.frames[job.segment.start + offset]]]
        ]
        summary.append(
            {
                "run": job.run_index,
                "keyframe": distinct[job.run.frames[0]],
                "direction": job.run.direction,
                "frames": [min(frames), max(frames)] if frames else [],
            }
        )
    return summary


class LongAnimationPipeline:
    """Segment-by-segment long colorization with Dynamic Global-Local Memory and fusion."""

    def __init__(self, model: LongAnimationModel):
        self.model = model.eval()
        self.backbone = model.backbone
        self.denoiser = model.denoiser().eval()
        self.device = next(model.sketch_dit.parameters()).device
        self.dtype = next(model.sketch_dit.parameters()).dtype

    @functools.cached_property
    def weights_digest(self) -> str:
        """The model's weights digest, part of a run's fingerprint: a retrained model never resumes a run."""
        return self.model.weights_digest()

    # ------------------------------------------------------------------ planning
    def plan(
        self, sketches: np.ndarray, keyframe_indices: list[int], options: ColorizeOptions
    ) -> tuple[list[int], list[SegmentJob]]:
        """Held-drawing groups of the shot and the ordered segment jobs over its distinct drawings."""
        groups = held_drawing_groups(sketches) if options.collapse_held_drawings else list(range(len(sketches)))
        distinct = sorted(set(groups))
        position = {frame: index for index, frame in enumerate(distinct)}
        keys = sorted({position[groups[k]] for k in keyframe_indices})
        jobs = []
        for run_index, run in enumerate(plan_runs(len(distinct), keys)):
            segments = plan_segments(
                len(run.frames), options.segment_frames, options.overlap, self.backbone.temporal_compression
            )
            for index, segment in enumerate(segments):
                following = segments[index + 1] if index + 1 < len(segments) else None
                jobs.append(SegmentJob(run_index, run, segment, following))
        return groups, jobs

    # ------------------------------------------------------------------ main entry
    @torch.no_grad()
    def __call__(
        self,
        sketches: np.ndarray,
        keyframes: Mapping[int, np.ndarray],
        prompt: str = "",
        options: ColorizeOptions = ColorizeOptions(),
        *,
        sink: FrameSink | None = None,
        state_dir=None,
        resume: bool = False,
        progress: ProgressCallback | None = None,
        stop_after_jobs: int | None = None,
    ) -> ArraySink | FrameSink:
        """Color ``sketches`` (T, H, W) bool (True = line) from ``keyframes`` {index: (H, W, 3) uint8}.

        Frames go to ``sink`` (default: an in-memory :class:`ArraySink`, returned).
        With ``state_dir`` the run state is saved after every segment and
        ``resume=True`` continues a run interrupted in that folder.
        ``stop_after_jobs`` ends the call early (tests of resumption).
        """
        options = options.resolved(self.model)
        sketches, keyframes = self.check_inputs(sketches, keyframes)
        num_frames, height, width = sketches.shape
        sink = sink if sink is not None else ArraySink(num_frames, height, width)
        model_height, model_width = self._model_size(height, width, options)
        box = Letterbox((height, width), (model_height, model_width))

        groups, jobs = self.plan(sketches, list(keyframes), options)
        distinct = sorted(set(groups))
        members = drawing_members(groups)
        model_sketches = np.stack([box.lineart_to_model(sketches[frame]) for frame in distinct])
        group_keyframe = keyframes_by_drawing(groups, keyframes)
        flat_colors = None
        if options.flat_colors:
            flat_colors = FlatColors(sketches, group_keyframe, options.palette_tolerance, options.track_regions)
        model_keyframes = {distinct.index(g): box.color_to_model(image) for g, image in group_keyframe.items()}
        carry = CARRIES[options.correspondence]()

        key = run_fingerprint(sketches, keyframes, prompt, options, self.model.preset, self.weights_digest)
        if resume and options.memory_update == "reencode":
            raise UserError("--resume needs the streaming memory (re-encoding keeps the whole history in RAM)")
        state = RunState.load(state_dir, key) if resume else RunState()
        memory_on = options.memory != "none"
        keyframe_stack = np.stack([model_keyframes[k] for k in sorted(model_keyframes)])
        if state.memory is None and memory_on:
            state.memory = self._new_memory(keyframe_stack)
        history: list[np.ndarray] = []  # generated frames, kept only to re-encode them (baseline)

        text = self._encode_prompt(prompt, options)
        fusion = ColorConsistencyFusion(
            options.num_inference_steps, options.fusion_start, self.backbone.temporal_compression
        )
        fusion.load_state_dict(state.fusion)
        if flat_colors is not None:
            flat_colors.load_state_dict(state.flat_colors)
        carry.load_state_dict(state.correspondence)

        if state_dir is not None and not resume:
            state.save(state_dir, key)  # before the first frame: a run killed in its first segment resumes
        for job_index in range(state.next_job, len(jobs)):
            job = jobs[job_index]
            if memory_on and options.memory_update == "reencode" and history:
                state.memory = self._reencoded_memory(keyframe_stack, history)
            if memory_on and job.segment.index == 0:
                # The local memory is the latest segment of this run; another run's would leak its direction.
                self.model.memory_model.clear_local(state.memory)
            step_callback = None
            if progress is not None:
                step_callback = lambda step, steps, j=job_index: progress(j, len(jobs), step, steps)  # noqa: E731
            frames = self._generate(job, job_index, model_sketches, model_keyframes, text, state, fusion, options, step_callback)
            self._emit(job, frames, sketches, distinct, members, box, group_keyframe, carry, flat_colors, sink)
            fresh = frames[self._fresh_positions(job)]
            if memory_on and options.memory_update == "reencode":
                history.append(fresh)
            elif memory_on:
                self.model.memory_model.append(state.memory, self._frames_for_memory(fresh))
            if options.paradigm == "autoregressive":
                last = job.segment.end - job.segment.start - 1
                state.reference = torch.from_numpy(frames[last].copy())
                state.reference_sketch = torch.from_numpy(model_sketches[job.run.frames[job.segment.end - 1]].copy())
            state.next_job = job_index + 1
            state.fusion = fusion.state_dict()
            if flat_colors is not None:
                state.flat_colors = flat_colors.state_dict()
            state.correspondence = carry.state_dict()
            if state_dir is not None:
                state.save(state_dir, key)
            if stop_after_jobs is not None and job_index + 1 >= stop_after_jobs:
                break
        return sink

    # ------------------------------------------------------------------ inputs
    def check_inputs(
        self, sketches: np.ndarray, keyframes: Mapping[int, np.ndarray]
    ) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        if not isinstance(sketches, FrameStore):
            sketches = np.asarray(sketches)
        if sketches.ndim != 3 or sketches.shape[0] == 0:
            raise UserError(f"line art must be a non-empty (frames, height, width) stack, got shape {sketches.shape}")
        if sketches.dtype != bool:
            raise UserError("line art must be binary (bool masks); binarize it first")
        if not keyframes:
            raise UserError("at least one colored keyframe is needed")
        num_frames, height, width = sketches.shape
        checked = {}
        for index, image in keyframes.items():
            if not 0 <= index < num_frames:
                raise UserError(f"keyframe index {index} is outside the shot (frames 0 to {num_frames - 1})")
            if image.shape != (height, width, 3):
                raise UserError(
                    f"keyframe @{index} is {image.shape[1]}x{image.shape[0]} but the line art is {width}x{height}"
                )
            checked[int(index)] = np.asarray(image, np.uint8)
        return sketches, checked

    def _model_size(self, height: int, width: int, options: ColorizeOptions) -> tuple[int, int]:
        multiple = self.backbone.spatial_compression * self.backbone.transformer.config.patch_size
        if options.height or options.width:
            size = (options.height or self.model.segment.height, options.width or self.model.segment.width)
            if size[0] % multiple or size[1] % multiple:
                raise UserError(f"model height and width must be multiples of {multiple}, got {size[0]}x{size[1]}")
            return size
        return model_size_for(height, width, self.model.segment.height * self.model.segment.width, multiple)

    # ------------------------------------------------------------------ conversions
    def _pixels(self, frames: np.ndarray) -> torch.Tensor:
        """(T, H, W, 3) uint8 -> (1, 3, T, H, W) in [-1, 1]."""
        tensor = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device, self.dtype)
        return (tensor.permute(3, 0, 1, 2)[None] / 127.5) - 1.0

    @staticmethod
    def _sketch_images(masks: np.ndarray) -> np.ndarray:
        """Line masks -> RGB images, black lines on white (the model's sketch input)."""
        return np.repeat(np.where(masks, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)

    def _frames_for_memory(self, frames: np.ndarray) -> torch.Tensor:
        """(T, H, W, 3) uint8 -> (T, 3, H, W) in [0, 1], as the memory model takes them."""
        tensor = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device, self.dtype)
        return tensor.permute(0, 3, 1, 2) / 255.0

    def _encode_prompt(self, prompt: str, options: ColorizeOptions) -> torch.Tensor:
        prompts = ["", prompt] if options.guidance_scale > 1 else [prompt]
        return self.backbone.encode_prompt(prompts).to(self.device, self.dtype)

    # ------------------------------------------------------------------ one segment
    def _generate(
        self,
        job: SegmentJob,
        job_index: int,
        model_sketches: np.ndarray,
        model_keyframes: dict[int, np.ndarray],
        text: torch.Tensor,
        state: RunState,
        fusion: ColorConsistencyFusion,
        options: ColorizeOptions,
        on_step: Callable[[int, int], None] | None,
    ) -> np.ndarray:
        """Denoise and decode one segment; returns its real frames (end - start, H, W, 3) uint8."""
        segment, run = job.segment, job.run
        positions = [run.frames[min(i, segment.end - 1)] for i in range(segment.start, segment.start + segment.length)]
        sketch_latents = self.backbone.encode_video(self._pixels(self._sketch_images(model_sketches[positions])))

        keyframe = run.frames[0]
        reference, reference_sketch = model_keyframes[keyframe], model_sketches[keyframe]
        if options.paradigm == "autoregressive" and segment.index > 0:
            reference, reference_sketch = state.reference.numpy(), state.reference_sketch.numpy()
        image_latent = self.backbone.encode_reference_image(self._pixels(reference[None])[:, :, 0])
        reference_sketch_latent = self.backbone.encode_video(self._pixels(self._sketch_images(reference_sketch[None])))

        lead = self.model.sketch_dit.num_leading_frames(sketch_latents.shape[1])
        arranged = self.model.sketch_dit.arrange_sketch_latents(sketch_latents, reference_sketch_latent)
        image_latents = self.backbone.image_latents_padded(image_latent, arranged.shape[1])
        memory = self._memory_inputs(state, job_index, options)

        if segment.index == 0:
            fusion.stored = {}
        fusion.begin_segment()
        tail = overlap_latent_frames(job.next_segment.overlap, self.backbone.temporal_compression) if job.next_segment else 0
        generator = torch.Generator().manual_seed(options.seed * 1_000_003 + job_index)
        latents = self._denoise(
            arranged, image_latents, text, memory, generator, fusion, segment.overlap, tail, lead, options, on_step
        )
        fusion.end_segment()
        pixels = self.backbone.decode_latents(latents[:, lead:])[0]  # (3, F, H, W) in [-1, 1]
        frames = ((pixels.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0).cpu().numpy()
        return frames[: segment.end - segment.start]

    def _new_memory(self, keyframes: np.ndarray):
        """A streaming memory holding the keyframes, pinned (never merged away)."""
        memory = self.model.memory_model.new_state()
        self.model.memory_model.append(memory, self._frames_for_memory(keyframes), pinned=True)
        return memory

    def _reencoded_memory(self, keyframes: np.ndarray, history: list[np.ndarray]):
        """The authors' approach: encode the whole history again; the last segment becomes the local view."""
        memory = self._new_memory(keyframes)
        if len(history) > 1:
            self.model.memory_model.append(memory, self._frames_for_memory(np.concatenate(history[:-1])))
        self.model.memory_model.append(memory, self._frames_for_memory(history[-1]))
        return memory

    def _memory_inputs(self, state: RunState, job_index: int, options: ColorizeOptions) -> dict | None:
        """DGLM inputs (eq. 4): none for the shot's first segment (fig. 2(b)), else the chosen views."""
        if options.memory == "none" or job_index == 0:
            return None
        memory_model = self.model.memory_model
        views = {}
        if options.memory in ("global", "both"):
            views["global_view"] = memory_model.global_view(state.memory)
        if options.memory in ("local", "both"):
            views["local_view"] = memory_model.local_view(state.memory)
        return views

    def _denoise(
        self,
        sketch_latents: torch.Tensor,
        image_latents: torch.Tensor,
        text: torch.Tensor,
        memory: dict | None,
        generator: torch.Generator,
        fusion: ColorConsistencyFusion,
        overlap_frames: int,
        tail_latents: int,
        lead: int,
        options: ColorizeOptions,
        on_step: Callable[[int, int], None] | None,
    ) -> torch.Tensor:
        """The sampling loop with classifier-free guidance and Color Consistency Fusion (eq. 6)."""
        scheduler = copy.deepcopy(self.backbone.scheduler)
        scheduler.set_timesteps(options.num_inference_steps, device=self.device)
        timesteps = scheduler.timesteps
        noise = torch.randn(sketch_latents.shape, generator=generator, dtype=torch.float32)
        latents = (noise * scheduler.init_noise_sigma).to(self.device, self.dtype)
        guided = options.guidance_scale > 1
        batch = 2 if guided else 1
        conditions = dict(
            image_latents=image_latents.expand(batch, -1, -1, -1, -1),
            sketch_latents=sketch_latents.expand(batch, -1, -1, -1, -1),
            text_embeds=text,
            memory=memory,
        )
        previous_x0 = None
        for step, timestep in enumerate(timesteps):
            model_input = latents.expand(batch, -1, -1, -1, -1)
            velocity = self.denoiser(model_input, timestep=timestep.expand(batch), **conditions)
            if guided:
                unconditional, conditional = velocity.chunk(2)
                velocity = unconditional + options.guidance_scale * (conditional - unconditional)
            if isinstance(scheduler, CogVideoXDPMScheduler):
                back = timesteps[step - 1] if step > 0 else None
                latents, previous_x0 = scheduler.step(
                    velocity, previous_x0, timestep, back, latents, generator=generator, return_dict=False
                )
            else:
                latents = scheduler.step(velocity, timestep, latents, generator=generator, return_dict=False)[0]
            real = fusion.blend(latents[:, lead:], step, overlap_frames)
            latents = torch.cat([latents[:, :lead], real], dim=1)
            fusion.record(real, step, tail_latents)
            if on_step is not None:
                on_step(step + 1, len(timesteps))
        return latents

    # ------------------------------------------------------------------ output
    @staticmethod
    def _fresh_positions(job: SegmentJob) -> slice:
        """Frames of this segment not yet appended to the memory (the previous segment appended its own)."""
        return slice(job.segment.overlap, job.segment.end - job.segment.start)

    def _emit(
        self,
        job: SegmentJob,
        frames: np.ndarray,
        sketches: np.ndarray,
        distinct: list[int],
        members: dict[int, list[int]],
        box: Letterbox,
        group_keyframe: Mapping[int, np.ndarray],
        carry: ColorCarry,
        flat_colors: FlatColors | None,
        sink: FrameSink,
    ) -> None:
        """Hand the frames this segment owns to the sink, in input size; a keyframe's drawing is the keyframe.

        Each frame takes the colors that correspondence carries from the frames
        before it in the run, the model's where it carries none, then flat colors.
        """
        if job.segment.index == 0:
            start = distinct[job.run.frames[0]]
            carry.begin_run(group_keyframe[start], sketches[start])
            if flat_colors is not None:
                flat_colors.begin_run(start)
        for offset in owned_offsets(job):
            group = distinct[job.run.frames[job.segment.start + offset]]
            keyframe = group_keyframe.get(group)
            image = keyframe
            if keyframe is None:
                image = carry(sketches[group], box.color_from_model(frames[offset]))
                if flat_colors is not None:
                    image = flat_colors(group, image)
            for frame in members[group]:
                sink.write(frame, image)
