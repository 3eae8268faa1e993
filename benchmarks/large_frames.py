"""Peak memory and speed of `longanimation colorize` at large frame sizes, for several shot lengths.

    python benchmarks/large_frames.py [--cases 1920x1080x30,1920x1080x100,1920x1080x300,4096x2160x10,4096x2160x30]
        [--model DIR] [--work DIR] [--out benchmarks/results/large-frames]

Each case writes a synthetic binary line-art shot of that size and length (a
painted set of boxes and posts, a character-sized box walking across it, the
camera panning now and then), its colored keyframe (every closed area its own
flat color), and runs the CLI on it in a fresh process whose peak resident
memory is read from ``getrusage`` of that process alone. Streaming means the
peak must not grow with the number of frames. Writes ``summary.json`` and
``summary.md`` (seconds per frame, peak RSS) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from longanimation.atomic import atomic_file

DEFAULT_CASES = "1920x1080x30,1920x1080x100,1920x1080x300,4096x2160x10,4096x2160x30"


def drawing(width: int, height: int, frame: int) -> np.ndarray:
    """Line art (True = line) of frame ``frame``: a fixed set, a walking box, a pan every 40 frames."""
    pan = (frame // 40) * width // 64
    canvas = np.zeros((height, width + width // 2), np.uint8)
    thick = max(2, width // 640)
    rng = np.random.default_rng(0)
    for _ in range(24):
        x, y = int(rng.integers(0, canvas.shape[1] - width // 8)), int(rng.integers(0, height - height // 6))
        cv2.rectangle(canvas, (x, y), (x + width // 10, y + height // 8), 1, thick)
    lines = canvas[:, pan : pan + width].copy()
    size = height // 5
    left = (frame * width // 200) % (width - size)
    top = height // 2 + int(height // 20 * np.sin(frame / 5))
    cv2.rectangle(lines, (left, top), (left + size, top + size), 0, -1)
    cv2.rectangle(lines, (left, top), (left + size, top + size), 1, thick)
    cv2.circle(lines, (left + size // 2, top + size // 3), size // 6, 1, thick)
    return lines.astype(bool)


def keyframe_of(lines: np.ndarray) -> np.ndarray:
    """Every closed area of ``lines`` in its own flat color, lines dark."""
    count, labels = cv2.connectedComponents((~lines).astype(np.uint8), connectivity=4)
    palette = np.random.default_rng(1).integers(40, 240, (count, 3)).astype(np.uint8)
    color = palette[labels]
    color[lines] = (25, 20, 30)
    return color


def write_shot(folder: Path, width: int, height: int, frames: int) -> Path:
    (folder / "lineart").mkdir(parents=True)
    for index in range(frames):
        lines = drawing(width, height, index)
        Image.fromarray(np.where(lines, 0, 255).astype(np.uint8)).save(folder / "lineart" / f"{index:05d}.png")
        if index == 0:
            Image.fromarray(keyframe_of(lines)).save(folder / "key.png")
    return folder


def measure(command: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in GB) of ``command`` run in a fresh process (the only child of a fresh watcher)."""
    watcher = (
        "import resource, subprocess, sys, time;"
        "start = time.perf_counter(); subprocess.run(sys.argv[1:], check=True);"
        "print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    result = subprocess.run([sys.executable, "-c", watcher, *command], check=True, capture_output=True, text=True)
    seconds, kilobytes = result.stdout.split()[-2:]
    return float(seconds), int(kilobytes) / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=DEFAULT_CASES, help="WIDTHxHEIGHTxFRAMES, comma separated")
    parser.add_argument("--model", type=Path, default=None, help="model folder (default: the shipped tiny model)")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/large-frames"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.work) as scratch:
        for case in args.cases.split(","):
            width, height, frames = (int(v) for v in case.split("x"))
            shot = write_shot(Path(scratch) / case, width, height, frames)
            command = [sys.executable, "-m", "longanimation", "colorize", str(shot / "lineart"), str(shot / "out"),
                       "-k", str(shot / "key.png"), "--quiet"]
            if args.model is not None:
                command += ["--model", str(args.model)]
            seconds, peak = measure(command)
            rows.append({"width": width, "height": height, "frames": frames, "seconds": round(seconds, 1),
                         "seconds_per_frame": round(seconds / frames, 3), "peak_rss_gb": round(peak, 3)})
            print(json.dumps(rows[-1]), flush=True)
            write_summary(args.out, rows)


def write_summary(out: Path, rows: list[dict]) -> None:
    with atomic_file(out / "summary.json") as tmp:
        tmp.write_text(json.dumps({"measured": time.strftime("%Y-%m-%d"), "cases": rows}, indent=1) + "\n")
    lines = [
        "# colorize at large frame sizes (shipped tiny model, default options, this 2-core CPU)",
        "",
        "Command: `python benchmarks/large_frames.py`; peak RSS of the colorize process alone.",
        "",
        "| frame size | frames | seconds | s/frame | peak RSS (GB) |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['width']}x{r['height']} | {r['frames']} | {r['seconds']} | {r['seconds_per_frame']} | {r['peak_rss_gb']} |"
        for r in rows
    ]
    with atomic_file(out / "summary.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
