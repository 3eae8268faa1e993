"""kill -9 one colorization run at random points, resume it each time, compare with an uninterrupted run.

    python benchmarks/kill_resume.py [--frames 300] [--size 64] [--kills 20] [--seed 0] [--work DIR] [--out result.json]

A toon shot is generated with ``longanimation toon generate``, colored once
without interruption (the reference), then colored again in one run that is
killed with SIGKILL ``--kills`` times. The kill points are drawn with
``--seed`` along the run: a number of frames on disk, spread over the shot
(the first inside the first segment, the last at the end, while the videos
are written), reached by a process that has written at least one frame
itself (a resume redoes the unfinished segment), then a random delay of up to
``--max-delay`` seconds (so kills hit the denoising, the state saves and the
frame writes alike); about one point in six kills a process while it starts
up or checks the state instead. After every kill the folder must be resumable (it holds
a saved state) or absent (nothing but left-overs of atomic writes); it is
continued with ``--resume`` (a plain run where it is absent). At the end
every frame must be byte-identical to the reference. Prints and writes JSON;
exit code 1 if anything differs.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STATE = ".longanimation-state"


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "longanimation", *map(str, args)]


def frames_on_disk(out: Path) -> int:
    return len(list((out / "frames").glob("*.png"))) if (out / "frames").is_dir() else 0


def folder_state(out: Path) -> str:
    """absent, resumable, complete or broken (the property under test: never broken)."""
    if not out.exists() or all(p.name.startswith(".") and p.name.endswith((".tmp", ".old")) for p in out.iterdir()):
        return "absent"
    if (out / STATE / "state.json").is_file():
        return "resumable"
    if (out / "colorized.mp4").is_file() and frames_on_disk(out) > 0:
        return "complete"
    return "broken"


def frames_written_since(out: Path, start_ns: int) -> int:
    """Frames (re)written by the current process: a resume rewrites the frames of the job it redoes."""
    if not (out / "frames").is_dir():
        return 0
    count = 0
    for path in (out / "frames").glob("*.png"):
        try:
            count += path.stat().st_mtime_ns >= start_ns
        except FileNotFoundError:
            pass
    return count


def next_job(out: Path) -> int | None:
    try:
        return json.loads((out / STATE / "state.json").read_text())["next_job"]
    except (OSError, ValueError, KeyError):
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="Seed of the kill points.")
    parser.add_argument("--max-delay", type=float, default=1.0, help="Largest delay after a point's frame count (s).")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--model", type=Path, default=None, help="Model folder (default: the shipped tiny model).")
    parser.add_argument("--work", type=Path, default=None, help="Working folder (default: a temporary one, removed).")
    parser.add_argument("--out", type=Path, default=None, help="Also write the JSON result here.")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="kill-resume-"))
    work.mkdir(parents=True, exist_ok=True)
    shot = work / "shot"
    subprocess.run(cli("toon", "generate", shot, "--frames", args.frames, "--size", args.size, "--seed", 3),
                   check=True, capture_output=True)
    options = ["-k", shot / "color" / "00000.png", "--steps", args.steps, "--guidance-scale", "1",
               "--no-collapse-held", "--quiet"]
    if args.model is not None:
        options += ["--model", args.model]

    reference = work / "reference"
    shutil.rmtree(reference, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(cli("colorize", shot / "lineart", reference, *options), check=True)
    reference_seconds = time.perf_counter() - started
    segments = json.loads((reference / "segments.json").read_text())["segments"]
    first_segment = segments[0]["frames"][1] - segments[0]["frames"][0] + 1

    rng = random.Random(args.seed)
    total = frames_on_disk(reference)
    # Frames on disk at each kill: the first inside the first segment, the last at the end, the others spread.
    inner = sorted(rng.randrange(first_segment, total) for _ in range(max(0, args.kills - 2)))
    points = [rng.randrange(1, max(2, first_segment)), *inner, total][: args.kills]
    out = work / "killed"
    shutil.rmtree(out, ignore_errors=True)
    kills, problems = [], []
    for number, point in enumerate(points):
        delay = rng.uniform(0, args.max_delay)
        at_start = number > 0 and rng.random() < 1 / 6  # kill while starting up / checking the state
        before = folder_state(out)
        command = cli("colorize", shot / "lineart", out, *options, *(["--resume"] if before == "resumable" else []))
        start_ns = time.time_ns()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        while not at_start and process.poll() is None and (
            frames_on_disk(out) < point or frames_written_since(out, start_ns) < 1
        ):
            time.sleep(0.005)
        deadline = time.perf_counter() + delay
        while process.poll() is None and time.perf_counter() < deadline:
            time.sleep(0.005)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        code = process.wait()
        error = process.stderr.read().decode().strip()
        after = folder_state(out)
        kills.append({"frames_point": None if at_start else point, "delay_s": round(delay, 3), "exit": code, "frames_on_disk": frames_on_disk(out),
                      "next_job": next_job(out), "folder": after})
        if code not in (-signal.SIGKILL, 0):
            problems.append(f"kill at {point} frames + {delay:.2f} s: exit {code}: {error}")
        if after == "broken":
            problems.append(f"kill at {point} frames + {delay:.2f} s: folder neither resumable nor absent")
        if code == 0 or after == "complete":  # finished before the kill came: nothing left to interrupt
            break

    final = folder_state(out)
    if final != "complete":
        finish = cli("colorize", shot / "lineart", out, *options, *(["--resume"] if final == "resumable" else []))
        done = subprocess.run(finish, capture_output=True, text=True, check=False)
        if done.returncode:
            problems.append(f"final run: exit {done.returncode}: {done.stderr.strip()}")
    differing = [p.name for p in sorted((reference / "frames").iterdir())
                 if not (out / "frames" / p.name).is_file() or (out / "frames" / p.name).read_bytes() != p.read_bytes()]
    if differing:
        problems.append(f"{len(differing)} frames differ from the uninterrupted run: {differing[:5]}")
    if not (out / "colorized.mp4").is_file() or (out / STATE).exists():
        problems.append("the resumed run did not finish (no video, or its state is left)")

    result = {
        "frames": total, "size": args.size, "segments": len(segments), "first_segment_frames": first_segment,
        "seed": args.seed, "kills": sum(k["exit"] == -signal.SIGKILL for k in kills),
        "kills_before_the_first_segment_was_saved": sum(k["exit"] == -signal.SIGKILL and k["next_job"] in (None, 0) for k in kills),
        "reference_seconds": round(reference_seconds, 1), "byte_identical": not differing,
        "problems": problems, "points": kills,
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
