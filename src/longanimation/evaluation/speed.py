"""Speed and memory benchmark: streaming memory against re-encoding the history every segment.

What it measures, each configuration in a fresh process (so peak RSS is its own):

* per-segment time and peak memory against shot length (200 to 2000 frames)
  for our streaming memory and for re-encoding the whole history before
  every segment (the authors' release);
* the overhead of DGLM over SketchDiT alone (``memory="none"``);
* the speed-up from coloring held drawings once (a shot on twos).

Shots are toon worlds; weights do not change timings, so a random tiny model
is used unless a model folder is given.
"""

from __future__ import annotations

import json
import multiprocessing
import resource
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_file

SPEED_JSON, SPEED_MD, SPEED_PNG = "speed.json", "speed.md", "speed.png"


@dataclass(frozen=True)
class SpeedCase:
    """One timed colorization run."""

    name: str
    frames: int
    memory: str = "both"
    memory_update: str = "streaming"
    on_twos: bool = False
    collapse_held: bool = False


def _measure(case: SpeedCase, size: int, model_dir: str | None, threads: int) -> dict:
    """Run one case (in a child process) and return its timings and peak RSS."""
    import torch

    from ..data.toon import ToonConfig, ToonWorld
    from ..models.longanimation_model import LongAnimationModel
    from ..pipeline.long_animation import ColorizeOptions, LongAnimationPipeline

    torch.set_num_threads(threads)
    model = LongAnimationModel.from_pretrained(model_dir) if model_dir else LongAnimationModel.from_preset("tiny")
    pipeline = LongAnimationPipeline(model)
    drawings = case.frames // 2 if case.on_twos else case.frames
    clip = ToonWorld(ToonConfig(seed=5, frames=drawings, height=size, width=size)).render_range(0, drawings)
    sketches = np.repeat(clip.lineart, 2, axis=0) if case.on_twos else clip.lineart
    options = ColorizeOptions(  # the model at the shot's size (square shots; the tiny preset's is 128)
        memory=case.memory, memory_update=case.memory_update, collapse_held_drawings=case.collapse_held,
        height=size, width=size,
    )
    ends: list[float] = []

    def progress(job: int, jobs: int, step: int, steps: int) -> None:
        if step == steps:
            ends.append(time.perf_counter())

    start = time.perf_counter()
    pipeline(sketches, {0: clip.color[0]}, "", options, progress=progress)
    total = time.perf_counter() - start
    segments = np.diff([start, *ends])
    tail = segments[-5:]
    return {
        **asdict(case),
        "weights": model.weights_digest(),
        "segments": len(segments),
        "seconds": round(total, 2),
        "frames_per_second": round(case.frames / total, 2),
        "second_segment_s": round(float(segments[1]), 3) if len(segments) > 1 else None,
        "last_segments_s": round(float(tail.mean()), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def measure_in_child(case: SpeedCase, size: int, model_dir: str | None, threads: int) -> dict:
    """:func:`_measure` in a fresh spawned process."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_measure, (case, size, model_dir, threads))


def speed_cases(lengths: list[int], overhead_frames: int) -> list[SpeedCase]:
    """Streaming vs re-encoding at every length, DGLM overhead and held drawings at one length."""
    cases = [SpeedCase(f"{update}-{n}", n, memory_update=update) for update in ("streaming", "reencode") for n in lengths]
    cases += [
        SpeedCase(f"sketchdit-only-{overhead_frames}", overhead_frames, memory="none"),
        SpeedCase(f"twos-collapsed-{overhead_frames}", overhead_frames, on_twos=True, collapse_held=True),
        SpeedCase(f"twos-every-frame-{overhead_frames}", overhead_frames, on_twos=True, collapse_held=False),
    ]
    return cases


def run_speed_benchmark(
    lengths: list[int],
    out_dir: Path,
    *,
    size: int = 128,
    model_dir: str | None = None,
    threads: int = 2,
    command: str = "",
    report=print,
) -> dict:
    """Measure every case, then write speed.json, speed.md and speed.png into ``out_dir``."""
    overhead_frames = lengths[min(1, len(lengths) - 1)]
    results = []
    for case in speed_cases(lengths, overhead_frames):
        results.append(measure_in_child(case, size, model_dir, threads))
        report(f"{case.name}: {results[-1]['last_segments_s']} s/segment, {results[-1]['peak_rss_mb']} MB")
    by_name = {row["name"]: row for row in results}
    summary = {
        "command": command,
        "size": size,
        "model": model_dir or "tiny preset, random weights",
        "weights": results[0]["weights"],  # every case loads the same model
        "results": results,
        "dglm_overhead": round(
            by_name[f"streaming-{overhead_frames}"]["last_segments_s"]
            / by_name[f"sketchdit-only-{overhead_frames}"]["last_segments_s"],
            3,
        ),
        "held_drawing_speedup": round(
            by_name[f"twos-every-frame-{overhead_frames}"]["seconds"]
            / by_name[f"twos-collapsed-{overhead_frames}"]["seconds"],
            2,
        ),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_file(out_dir / SPEED_JSON) as tmp:
        tmp.write_text(json.dumps(summary, indent=1) + "\n")
    with atomic_file(out_dir / SPEED_MD) as tmp:
        tmp.write_text(speed_markdown(summary, lengths))
    plot_speed(summary, lengths, out_dir / SPEED_PNG)
    return summary


def speed_markdown(summary: dict, lengths: list[int]) -> str:
    """The speed table: per-segment time and peak RSS by shot length, streaming vs re-encoding."""
    rows = {row["name"]: row for row in summary["results"]}
    lines = [
        "# Speed and memory against shot length",
        "",
        f"Command: `{summary['command']}`  ",
        f"Model: {summary['model']} (weights {summary['weights']}), frames {summary['size']}x{summary['size']}.",
        "",
        "| frames | streaming s/segment (last 5) | streaming peak RSS MB | re-encode s/segment (last 5) | re-encode peak RSS MB |",
        "| --- | --- | --- | --- | --- |",
    ]
    for n in lengths:
        ours, theirs = rows[f"streaming-{n}"], rows[f"reencode-{n}"]
        lines.append(
            f"| {n} | {ours['last_segments_s']:.3f} | {ours['peak_rss_mb']:.0f} | "
            f"{theirs['last_segments_s']:.3f} | {theirs['peak_rss_mb']:.0f} |"
        )
    lines += [
        "",
        f"DGLM + memory over SketchDiT alone: {summary['dglm_overhead']:.2f}x time per segment.  ",
        f"Held drawings (a shot on twos) colored once: {summary['held_drawing_speedup']:.2f}x faster than frame by frame.",
        "",
    ]
    return "\n".join(lines)


def plot_speed(summary: dict, lengths: list[int], path: Path) -> None:
    """Per-segment time and peak RSS against shot length."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {row["name"]: row for row in summary["results"]}
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for update, label in (("streaming", "streaming memory (ours)"), ("reencode", "re-encode history (official)")):
        left.plot(lengths, [rows[f"{update}-{n}"]["last_segments_s"] for n in lengths], marker="o", label=label)
        right.plot(lengths, [rows[f"{update}-{n}"]["peak_rss_mb"] for n in lengths], marker="o", label=label)
    left.set(xlabel="shot length (frames)", ylabel="seconds per segment (last 5)", title="time per segment")
    right.set(xlabel="shot length (frames)", ylabel="peak RSS (MB)", title="peak memory")
    left.legend()
    figure.tight_layout()
    with atomic_file(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    plt.close(figure)
