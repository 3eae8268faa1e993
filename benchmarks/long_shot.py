"""Measure a long colorization run: throughput, per-segment time and peak memory over the shot.

    python benchmarks/long_shot.py --frames 1000 --size 128 [--model DIR] [--out results.json]

Without --model the tiny preset is built with random weights (speed and memory
do not depend on the weights). Prints and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np
import torch

from longanimation.data.toon import ToonConfig, ToonWorld
from longanimation.models.longanimation_model import LongAnimationModel
from longanimation.pipeline.long_animation import ColorizeOptions, LongAnimationPipeline, plan_summary


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--model", default=None)
    parser.add_argument("--no-collapse-held", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = LongAnimationModel.from_pretrained(args.model) if args.model else LongAnimationModel.from_preset("tiny")
    pipeline = LongAnimationPipeline(model)
    clip = ToonWorld(ToonConfig(seed=args.seed, frames=args.frames, height=args.size, width=args.size)).render_range(
        0, args.frames
    )
    options = ColorizeOptions(collapse_held_drawings=not args.no_collapse_held)
    groups, jobs = pipeline.plan(clip.lineart, [0], options.resolved(model))
    last_frame = [entry["frames"][1] if entry["frames"] else -1 for entry in plan_summary(groups, jobs)]

    finished: list[float] = []
    rss: list[float] = []

    def progress(job: int, jobs_total: int, step: int, steps: int) -> None:
        if step == steps:
            finished.append(time.perf_counter())
            rss.append(peak_rss_mb())

    start = time.perf_counter()
    pipeline(clip.lineart, {0: clip.color[0]}, "", options, progress=progress)
    total = time.perf_counter() - start
    # The progress callback fires when denoising ends; decoding and memory update follow, so use the gaps.
    durations = np.diff([start, *finished]).tolist()
    at_200 = next(i for i, frame in enumerate(last_frame) if frame >= min(200, args.frames - 1))
    report = {
        "frames": args.frames,
        "size": args.size,
        "segments": len(jobs),
        "distinct_drawings": len(set(groups)),
        "collapse_held": not args.no_collapse_held,
        "seconds": round(total, 2),
        "frames_per_second": round(args.frames / total, 2),
        "second_segment_s": round(durations[1], 3),
        "last_segments_mean_s": round(float(np.mean(durations[-5:])), 3),
        "last_over_second": round(float(np.mean(durations[-5:]) / durations[1]), 3),
        "median_segment_s": round(float(np.median(durations)), 3),
        "peak_rss_mb_at_frame_200": round(rss[at_200], 1),
        "peak_rss_mb_at_end": round(rss[-1], 1),
        "segment_seconds": [round(d, 3) for d in durations],
    }
    print(json.dumps({k: v for k, v in report.items() if k != "segment_seconds"}, indent=1))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(report, handle, indent=1)


if __name__ == "__main__":
    main()
