"""Paper-scale speed and GPU memory: two 81-frame segments at 768 x 1360 on one GPU.

    python benchmarks/gpu_paper.py [--steps 4] [--model DIR] [--offload none|model|sequential]
                                   [--dtype bf16] [--vae-whole] [--memory-resident] [--out FILE]
    python benchmarks/gpu_paper.py --preset tiny --device cpu      # the same code at toy size (a test runs it)

Colors a synthetic shot of ``2F - C - 1`` frames (145 for the paper's F = 81,
C = 16) from one keyframe: the first segment with SketchDiT alone, the second
with the memory (global + local, DGLM) and Color Consistency Fusion over the
overlap, through :class:`~longanimation.pipeline.long_animation.LongAnimationPipeline`
with the placement options of ``colorize`` (default: bf16 weights, the
sampler in float32, ``--offload none``, VAE tiling on). Correspondence carrying
and flat colors are off (the paper's pipeline; they run on the CPU).

Weights: random at the preset's shapes unless ``--model`` names a model folder
(e.g. one written by ``longanimation convert-official``). Speed and memory do
not depend on the values. The random model is built directly on the device in
the target dtype (no 76 GB float32 copy in CPU RAM first); the text encoder
and the memory model then move to CPU RAM when the placement says so. With
random weights the memory model's frame changes are meaningless, so its chunk
plan is not the one real frames would give (the chunk sizes change its cost a
little).

Prints seconds per step, per segment (conditions + denoising + decode +
memory update), and the peak GPU memory (``torch.cuda.max_memory_allocated``)
of each segment and of the run next to ``longanimation info --estimate``'s
estimate for the same placement, and writes it all as JSON to
``benchmarks/results/gpu/`` (or ``--out``). With the defaults (4 steps) it
takes a few minutes on one H100 / H200.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from longanimation.models.longanimation_model import LongAnimationModel
from longanimation.pipeline.long_animation import ColorizeOptions, LongAnimationPipeline
from longanimation.pipeline.placement import DTYPES, OFFLOADS, PlacementOptions

RESULTS = Path(__file__).resolve().parent / "results" / "gpu"
GiB = 2**30


class BenchmarkPipeline(LongAnimationPipeline):
    """The pipeline with a fixed weights digest: hashing 38 GB of weights is not what is measured (no resume here)."""

    weights_digest = "benchmark"


def build_random(preset: str, device: str, dtype: torch.dtype) -> LongAnimationModel:
    """Random weights at the preset's shapes, created on ``device`` in ``dtype`` (no float32 copy anywhere)."""
    from diffusers import CogVideoXDPMScheduler

    from longanimation.models.text_tokenizer import build_toon_tokenizer

    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        model = LongAnimationModel.from_preset(preset, device=device)
    finally:
        torch.set_default_dtype(default)
    backbone = model.backbone
    backbone.scheduler = CogVideoXDPMScheduler.from_config(backbone.scheduler.config)  # float32 math, on the CPU
    for module in model.modules():  # float buffers (CLIP pixel statistics) back to float32
        for name, buffer in module._buffers.items():
            if buffer is not None and buffer.is_floating_point():
                module._buffers[name] = buffer.float()
    if backbone.tokenizer is None:  # the paper preset has none (T5's comes with a snapshot): any word-level one will do
        backbone.tokenizer = build_toon_tokenizer(backbone.max_text_length)
    return model.eval()


def synthetic_shot(frames: int, height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Line art (frames, H, W) bool of discs drifting over a grid, every frame different; a colored keyframe 0."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width]
    grid = ((rows % max(height // 6, 8)) == 0) | ((cols % max(width // 8, 8)) == 0)
    discs = rng.uniform(0.15, 0.85, (4, 2)) * (height, width)
    speeds = rng.uniform(-1, 1, (4, 2)) * max(height, width) / 200
    radius = max(min(height, width) // 10, 3)
    sketches = np.zeros((frames, height, width), bool)
    for index in range(frames):
        lines = grid.copy()
        for (y, x), (dy, dx) in zip(discs, speeds):
            distance = np.hypot(rows - (y + dy * index), cols - (x + dx * index))
            lines |= np.abs(distance - radius) < 1.5
        sketches[index] = lines
    keyframe = np.empty((height, width, 3), np.uint8)
    keyframe[:] = (rows[..., None] * 255 // height + cols[..., None] * 255 // width + np.array([0, 85, 170])) % 256
    keyframe[sketches[0]] = 0
    return sketches, keyframe


class Clock:
    """Wall-clock marks, the device synchronised first so that GPU work is counted where it runs."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def peak(self) -> int | None:
        return torch.cuda.max_memory_allocated() if self.cuda else None

    def reset_peak(self) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()


def timed(record: list, clock: Clock, function):
    """``function`` that appends its seconds to ``record`` at every call."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        start = clock.now()
        try:
            return function(*args, **kwargs)
        finally:
            record.append(clock.now() - start)

    return wrapper


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="paper", choices=("paper", "tiny"))
    parser.add_argument("--model", default=None, help="model folder (default: random weights at the preset's shapes)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default=None, choices=tuple(DTYPES), help="default: bf16 on a GPU, fp32 on the CPU")
    parser.add_argument("--vae-dtype", default=None, choices=tuple(DTYPES), help="default: --dtype's")
    parser.add_argument("--offload", default="none", choices=OFFLOADS)
    parser.add_argument("--vae-whole", action="store_true", help="no VAE tiling (needs ~45 GiB more at 768x1360)")
    parser.add_argument("--memory-resident", action="store_true")
    parser.add_argument("--steps", type=int, default=4, help="denoising steps per segment (the paper: 50)")
    parser.add_argument("--height", type=int, default=None, help="model height (default: 768 for paper, the preset's for tiny)")
    parser.add_argument("--width", type=int, default=None, help="model width (default: 1360 for paper)")
    parser.add_argument("--no-estimate", action="store_true", help="skip the memory estimate printed next to the peak")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--out", default=None, help="JSON file (default: benchmarks/results/gpu/<settings>.json)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    placement = PlacementOptions(
        device=args.device,
        dtype=args.dtype,
        offload=args.offload,
        vae_tiling=not args.vae_whole,
        memory_resident=args.memory_resident,
        vae_dtype=args.vae_dtype,
    ).resolved()
    device, dtype = torch.device(placement.device), DTYPES[placement.dtype]
    clock = Clock(device)
    started = clock.now()
    if args.model:
        model = LongAnimationModel.from_pretrained(args.model, dtype=dtype)
    else:
        model = build_random(args.preset, placement.device, dtype)
    pipeline = BenchmarkPipeline(model, placement)
    built = clock.now() - started

    segment = model.segment
    height = args.height or (768 if model.preset == "paper" else segment.height)
    width = args.width or (1360 if model.preset == "paper" else segment.width)
    frames = 2 * segment.frames - segment.overlap - 1  # two segments sharing C + 1 frames
    options = ColorizeOptions(
        num_inference_steps=args.steps, height=height, width=width, correspondence="none", collapse_held_drawings=False
    )
    resolved = options.resolved(model)
    sketches, keyframe = synthetic_shot(frames, height, width)
    _, jobs = pipeline.plan(sketches, [0], resolved)
    if len(jobs) != 2:
        raise SystemExit(f"expected 2 segments for {frames} frames, planned {len(jobs)}")

    # Instrumentation: per-job marks at each segment's start, per-step marks from the progress callback.
    generate, conditions, denoise, decode, memory = [], [], [], [], []
    job_starts, job_peaks, steps = [], [], [[] for _ in jobs]
    last_step = [0.0]
    original_generate = pipeline._generate

    def generate_marked(*call_args, **call_kwargs):
        job_starts.append(clock.now())
        job_peaks.append(clock.peak())  # of what came before: the prompt and keyframes, or the previous segment
        clock.reset_peak()
        return original_generate(*call_args, **call_kwargs)

    def denoise_marked(*call_args, **call_kwargs):
        last_step[0] = clock.now()
        return original_denoise(*call_args, **call_kwargs)

    def on_step(job: int, _jobs: int, _step: int, _steps: int) -> None:
        now = clock.now()
        steps[job].append(now - last_step[0])
        last_step[0] = now

    original_denoise = pipeline._denoise
    pipeline._generate = timed(generate, clock, generate_marked)
    pipeline._conditions = timed(conditions, clock, pipeline._conditions)
    pipeline._denoise = timed(denoise, clock, denoise_marked)
    pipeline.backbone.decode_latents = timed(decode, clock, pipeline.backbone.decode_latents)
    pipeline.model.memory_model.append = timed(memory, clock, pipeline.model.memory_model.append)

    clock.reset_peak()
    run_start = clock.now()
    pipeline(sketches, {0: keyframe}, "a colored cartoon", options, progress=on_step)
    run_end = clock.now()
    job_peaks.append(clock.peak())
    overall_peak = max((p for p in job_peaks if p is not None), default=None)
    setup_peak, job_peaks = job_peaks[0], job_peaks[1:]

    keyframe_pins = len(memory) - len(jobs)  # the keyframes' append comes first
    ends = [*job_starts[1:], run_end]
    segments = []
    for index, job in enumerate(jobs):
        segments.append(
            {
                "index": index,
                "memory": index > 0,
                "fusion_steps": resolved.fusion_steps if index > 0 else 0,
                "seconds": ends[index] - job_starts[index],
                "seconds_per_step": steps[index],
                "mean_step_s": float(np.mean(steps[index])),
                "conditions_s": conditions[index],
                "denoise_s": denoise[index],
                "decode_s": decode[index],
                "memory_update_s": memory[keyframe_pins + index] if memory[keyframe_pins:] else 0.0,
                "peak_gib": None if job_peaks[index] is None else job_peaks[index] / GiB,
            }
        )
    estimate = None
    if not args.no_estimate:
        from longanimation.pipeline.gpu_estimate import estimate as estimate_memory

        estimated = estimate_memory(model.preset, height, width, placement.dtype)
        bytes_ = estimated.peak(placement.offload, placement.vae_tiling, placement.memory_resident)
        estimate = None if bytes_ is None else bytes_ / GiB
    result = {
        "command": "python benchmarks/gpu_paper.py",
        "preset": model.preset,
        "weights": args.model or "random",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "placement": {
            "dtype": placement.dtype,
            "vae_dtype": placement.vae_dtype,
            "offload": placement.offload,
            "vae_tiling": placement.vae_tiling,
            "memory_resident": placement.memory_resident,
        },
        "height": height,
        "width": width,
        "frames": frames,
        "segment_frames": resolved.segment_frames,
        "overlap": resolved.overlap,
        "steps": resolved.num_inference_steps,
        "guidance_scale": resolved.guidance_scale,
        "build_s": built,
        "before_first_segment_s": job_starts[0] - run_start,  # prompt encoding, keyframes into the memory
        "before_first_segment_peak_gib": None if setup_peak is None else setup_peak / GiB,
        "total_s": run_end - started,
        "segments": segments,
        "peak_gib": None if overall_peak is None else overall_peak / GiB,
        "estimated_peak_gib": estimate,
    }
    out = Path(args.out) if args.out else RESULTS / (
        f"{model.preset}-{height}x{width}-{placement.dtype}-{placement.offload}"
        f"{'-tiled' if placement.vae_tiling else ''}{'-resident' if placement.memory_resident else ''}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"{result['device']}: {model.preset} {height}x{width}, {resolved.segment_frames}-frame segments, "
          f"{resolved.num_inference_steps} steps, guidance {resolved.guidance_scale:g}, {placement.dtype}, "
          f"--offload {placement.offload}{' --vae-tiling' if placement.vae_tiling else ''}")
    print(f"model built in {built:.1f} s; prompt + keyframes {result['before_first_segment_s']:.1f} s")
    for row in segments:
        peak = "" if row["peak_gib"] is None else f", peak {row['peak_gib']:.2f} GiB"
        print(f"segment {row['index'] + 1} ({'memory + fusion' if row['memory'] else 'SketchDiT only'}): "
              f"{row['seconds']:.1f} s, {row['mean_step_s']:.2f} s/step (conditions {row['conditions_s']:.1f} s, "
              f"decode {row['decode_s']:.1f} s, memory {row['memory_update_s']:.1f} s){peak}")
    if overall_peak is not None:
        shown = "" if estimate is None else f" (estimated {estimate:.2f} GiB)"
        print(f"peak GPU memory {overall_peak / GiB:.2f} GiB{shown}")
    print(f"total {result['total_s']:.1f} s -> {out}")
    return result


if __name__ == "__main__":
    from longanimation.errors import UserError

    try:
        main()
    except UserError as error:
        raise SystemExit(f"error: {error}") from None
