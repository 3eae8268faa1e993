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
   regions optionally followed from their keyframe, new ones in the model's
   colors (:mod:`~longanimation.pipeline.flat_colors`); handed to a sink as soon as
   they are final, and the model's frames appended to the memory; the state
   needed to continue is saved so a killed run resumes exactly
   (:mod:`~longanimation.pipeline.resume`).

The memory model only ever sees each frame once (streaming), and its history
is bounded, so the cost of a segment does not grow with the length of the shot.

Comparison settings for the paper's tables run through the same code:
``memory`` in none/local/global/both (Table 2), ``fusion_steps`` (Table 3),
and the paradigms of :mod:`~longanimation.pipeline.paradigms` and memory
updates of :mod:`~longanimation.pipeline.memory_updates` as strategies.
The conditions, guidance and memory protocol are training's own
(:mod:`longanimation.models.conditioning`).
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
from ..models.conditioning import (
    MEMORY_MODES,
    Conditions,
    encode_conditions,
    guided_velocity,
    memory_views,
    prompt_embeddings,
    signed_pixels,
    signed_video,
    sketch_image,
    uint8_frames,
    unit_pixels,
)
from ..models.longanimation_model import LongAnimationModel
from .correspondence import CARRIES, ColorCarry
from .framing import Letterbox, model_size_for
from .flat_colors import FlatColors
from .fusion import ColorConsistencyFusion, shared_latent_frames, stitch_overlap
from .memory_updates import MEMORY_UPDATES, NoMemory
from .paradigms import PARADIGMS, Paradigm
from .placement import PlacementOptions, place
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


@dataclass(frozen=True)
class ColorizeOptions:
    """Inference settings; ``None`` takes the model preset's default (``SegmentDefaults``)."""

    segment_frames: int | None = None  # F
    overlap: int | None = None  # C: consecutive segments share C + 1 frames
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    fusion_steps: int | None = None  # t_st: fuse overlaps in the last this-many steps (eq. 6); 0 = no fusion
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
        _check_integer("--fusion-steps", self.fusion_steps, 0)
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
            fusion_steps=default_fusion if self.fusion_steps is None else self.fusion_steps,
        )
        if options.memory not in MEMORY_MODES:
            raise UserError(f"--memory must be one of {', '.join(MEMORY_MODES)}, got {options.memory!r}")
        if options.memory_update not in MEMORY_UPDATES:
            raise UserError(f"memory update must be one of {', '.join(MEMORY_UPDATES)}, got {options.memory_update!r}")
        if options.correspondence not in CARRIES:
            raise UserError(f"--correspondence must be one of {', '.join(CARRIES)}, got {options.correspondence!r}")
        if options.paradigm not in PARADIGMS:
            raise UserError(f"--paradigm must be one of {', '.join(PARADIGMS)}, got {options.paradigm!r}")
        options = PARADIGMS[options.paradigm]().resolve(options)
        if not 0 <= options.fusion_steps <= options.num_inference_steps:
            raise UserError(
                f"--fusion-steps must lie in [0, {options.num_inference_steps}] (the step count), "
                f"got {options.fusion_steps}"
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
    first = stitch_overlap(segment.shared_frames) if segment.index else int(job.run.direction < 0)
    last = segment.end - segment.start
    if following is not None:
        last = following.start + stitch_overlap(following.shared_frames) - segment.start
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

    def __init__(self, model: LongAnimationModel, placement: PlacementOptions | None = None):
        """``placement``: device, dtype, offload and VAE tiling (:mod:`.placement`); None: the model as it is."""
        self.model = model.eval()
        self.backbone = model.backbone
        self.denoiser = model.denoiser().eval()
        self.placement = place(self, placement)
        self.device = self.placement.device
        self.dtype = self.placement.dtype  # the weights'; the sampler's latents stay float32

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
        paradigm = PARADIGMS[options.paradigm]()
        key = run_fingerprint(sketches, keyframes, prompt, options, self.model.preset, self.weights_digest)

        # 1. Line art and keyframes at the model's resolution; held drawings collapsed to one.
        box = Letterbox((height, width), self._model_size(height, width, options))
        groups, jobs = self.plan(sketches, list(keyframes), options)
        distinct = sorted(set(groups))
        members = drawing_members(groups)
        model_sketches = np.stack([box.lineart_to_model(sketches[frame]) for frame in distinct])
        group_keyframe = keyframes_by_drawing(groups, keyframes)
        model_keyframes = {distinct.index(g): box.color_to_model(image) for g, image in group_keyframe.items()}

        # 2. The run state: fresh, or the one a killed run left; the prompt's embeddings c_t.
        memory = self._memory_update(model_keyframes, options)
        if resume and not memory.resumable:
            raise UserError("--resume needs the streaming memory (re-encoding keeps the whole history in RAM)")
        state = RunState.load(state_dir, key, self.device) if resume else RunState()
        fusion = ColorConsistencyFusion(
            options.num_inference_steps, options.fusion_steps, self.backbone.temporal_compression
        )
        fusion.load_state_dict(state.fusion)
        # Tracked regions are their own correspondence (flat_colors.FlatColors): carried pixels would be unused.
        carry = CARRIES["none" if options.track_regions else options.correspondence]()
        carry.load_state_dict(state.correspondence)
        flat_colors = None
        if options.flat_colors:
            flat_colors = FlatColors(sketches, group_keyframe, options.palette_tolerance, options.track_regions)
            flat_colors.load_state_dict(state.flat_colors)
        with self.placement.using(self.backbone.text_encoder):  # on the device for this only (offload)
            text = prompt_embeddings(self.backbone, [prompt], options.guidance_scale > 1).to(self.device, self.dtype)

        # 3. Every keyframe pinned in the long-video memory before anything is generated.
        memory.begin(state)
        if state_dir is not None and not resume:
            state.save(state_dir, key)  # before the first frame: a run killed in its first segment resumes

        for job_index in range(state.next_job, len(jobs)):
            job = jobs[job_index]
            # 4. Denoise the segment: SketchDiT alone for the shot's first, + DGLM on the memory after it,
            #    overlaps fused with the previous segment in the late steps (eq. 6).
            memory.before_segment(state, first_of_run=job.segment.index == 0)
            frames = self._generate(job, job_index, model_sketches, model_keyframes, text, state, fusion, paradigm, options, progress, len(jobs))
            # 5. Frames at the input's size: correspondence carries what earlier frames show, then flat colors.
            self._emit(job, frames, sketches, distinct, members, box, group_keyframe, carry, flat_colors, sink)
            # 6. The fresh frames enter the memory; the state that continues the run is saved.
            memory.after_segment(state, self._to_model(unit_pixels(frames[self._fresh_positions(job)])))
            segment_sketches = model_sketches[list(job.run.frames[job.segment.start : job.segment.end])]
            paradigm.finish_segment(job, frames, segment_sketches, state)
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

    # ------------------------------------------------------------------ conditions
    def _to_model(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to(self.device, self.dtype)

    def _memory_update(self, model_keyframes: dict[int, np.ndarray], options: ColorizeOptions) -> NoMemory:
        """The memory-update strategy of the run; the keyframes are what it pins."""
        if options.memory == "none":
            return NoMemory()
        keyframes = np.stack([model_keyframes[k] for k in sorted(model_keyframes)])
        memory_model = self.model.memory_model
        on_device = functools.partial(self.placement.using, memory_model)  # while it reads frames (offload)
        return MEMORY_UPDATES[options.memory_update](memory_model, self._to_model(unit_pixels(keyframes)), on_device)

    def _conditions(
        self, job: SegmentJob, model_sketches: np.ndarray, reference: tuple[np.ndarray, np.ndarray], text: torch.Tensor
    ) -> Conditions:
        """``c_i``, ``c_k``, ``c_t`` of a segment: its line art (padded to the segment length) and reference."""
        segment, run = job.segment, job.run
        positions = [run.frames[min(i, segment.end - 1)] for i in range(segment.start, segment.start + segment.length)]
        image, image_sketch = reference
        return encode_conditions(
            self.backbone,
            self.model.sketch_dit,
            reference=self._to_model(signed_pixels(image[None])),
            text=text,
            num_frames=segment.length,
            sketches=self._to_model(signed_video(sketch_image(model_sketches[positions]))),
            reference_sketch=self._to_model(signed_pixels(sketch_image(image_sketch[None]))),
        )

    def _memory_inputs(self, state: RunState, job_index: int, options: ColorizeOptions) -> dict | None:
        """DGLM inputs (eq. 4): none for the shot's first segment (fig. 2(b)), else the chosen views."""
        if options.memory == "none" or job_index == 0:
            return None
        return memory_views(self.model.memory_model, state.memory, options.memory)

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
        paradigm: Paradigm,
        options: ColorizeOptions,
        progress: ProgressCallback | None,
        jobs: int,
    ) -> np.ndarray:
        """Denoise and decode one segment; returns its real frames (end - start, H, W, 3) uint8."""
        keyframe = job.run.frames[0]
        reference = paradigm.reference(job, (model_keyframes[keyframe], model_sketches[keyframe]), state)
        conditions = self._conditions(job, model_sketches, reference, text)
        memory = self._memory_inputs(state, job_index, options)

        if job.segment.index == 0:
            fusion.stored = {}
        fusion.begin_segment()
        following = job.next_segment
        tail = shared_latent_frames(following.shared_frames, self.backbone.temporal_compression) if following else 0
        generator = torch.Generator().manual_seed(options.seed * 1_000_003 + job_index)
        on_step = None
        if progress is not None:
            on_step = functools.partial(progress, job_index, jobs)
        latents = self._denoise(conditions, memory, generator, fusion, job.segment.shared_frames, tail, options, on_step)
        fusion.end_segment()
        pixels = self.backbone.decode_latents(latents[:, conditions.lead :])[0]  # (3, F, H, W) in [-1, 1]
        return uint8_frames(pixels)[: job.segment.end - job.segment.start]

    def _denoise(
        self,
        conditions: Conditions,
        memory: dict | None,
        generator: torch.Generator,
        fusion: ColorConsistencyFusion,
        shared_frames: int,
        tail_latents: int,
        options: ColorizeOptions,
        on_step: Callable[[int, int], None] | None,
    ) -> torch.Tensor:
        """The sampling loop with classifier-free guidance and Color Consistency Fusion (eq. 6)."""
        scheduler = copy.deepcopy(self.backbone.scheduler)
        scheduler.set_timesteps(options.num_inference_steps, device=self.device)
        timesteps = scheduler.timesteps
        noise = torch.randn(conditions.image.shape, generator=generator, dtype=torch.float32)
        latents = (noise * scheduler.init_noise_sigma).to(self.device)  # float32: the scheduler's math too
        lead = conditions.lead
        previous_x0 = None
        for step, timestep in enumerate(timesteps):
            model_input = latents.to(self.dtype)  # the weights' dtype for the denoiser call only
            velocity = guided_velocity(self.denoiser, model_input, timestep, conditions, memory, options.guidance_scale)
            velocity = velocity.to(latents.dtype)
            if isinstance(scheduler, CogVideoXDPMScheduler):
                back = timesteps[step - 1] if step > 0 else None
                latents, previous_x0 = scheduler.step(
                    velocity, previous_x0, timestep, back, latents, generator=generator, return_dict=False
                )
            else:
                latents = scheduler.step(velocity, timestep, latents, generator=generator, return_dict=False)[0]
            real = fusion.blend(latents[:, lead:], step, shared_frames)
            latents = torch.cat([latents[:, :lead], real], dim=1)
            fusion.record(real, step, tail_latents)
            if on_step is not None:
                on_step(step + 1, len(timesteps))
        return latents

    # ------------------------------------------------------------------ output
    @staticmethod
    def _fresh_positions(job: SegmentJob) -> slice:
        """Frames of this segment not yet appended to the memory (the previous segment appended its own)."""
        return slice(job.segment.shared_frames, job.segment.end - job.segment.start)

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
