"""Held drawings speed-up and a keyframe in the middle of a shot.

    python benchmarks/held_and_keyframes.py [--frames 600] [--size 128] [--out results.json]

1. A shot on twos (every drawing held two frames) colored with held drawings
   collapsed, against the same shot colored frame by frame.
2. A keyframe at frame frames/2: every frame, before and after it, is colored.
Tiny preset with random weights unless --model is given (timing only).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from longanimation.data.toon import ToonConfig, ToonWorld
from longanimation.models.longanimation_model import LongAnimationModel
from longanimation.pipeline.long_animation import ColorizeOptions, LongAnimationPipeline


def timed(pipeline, sketches, keyframes, options):
    start = time.perf_counter()
    out = pipeline(sketches, keyframes, "", options)
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--model", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = LongAnimationModel.from_pretrained(args.model) if args.model else LongAnimationModel.from_preset("tiny")
    pipeline = LongAnimationPipeline(model)
    world = ToonWorld(ToonConfig(seed=11, frames=args.frames, height=args.size, width=args.size))
    clip = world.render_range(0, args.frames)

    on_twos = np.repeat(clip.lineart[: args.frames // 2], 2, axis=0)
    key = {0: clip.color[0]}
    _, collapsed = timed(pipeline, on_twos, key, ColorizeOptions())
    _, every_frame = timed(pipeline, on_twos, key, ColorizeOptions(collapse_held_drawings=False))

    middle = args.frames // 2
    out, seconds = timed(pipeline, clip.lineart, {middle: clip.color[middle]}, ColorizeOptions())
    report = {
        "frames": args.frames,
        "size": args.size,
        "on_twos_collapsed_s": round(collapsed, 2),
        "on_twos_every_frame_s": round(every_frame, 2),
        "held_speedup": round(every_frame / collapsed, 2),
        "keyframe_index": middle,
        "keyframe_run_frames_out": int(out.written.sum()),
        "keyframe_run_frames_before_keyframe_colored": int(out.written[:middle].sum()),
        "keyframe_run_s": round(seconds, 2),
    }
    print(json.dumps(report, indent=1))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(report, handle, indent=1)


if __name__ == "__main__":
    main()
