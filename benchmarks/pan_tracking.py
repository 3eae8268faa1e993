"""How well the correspondence follows a camera pan, on shots of benchmarks/real_shots.py, whose pan is known.

    python benchmarks/pan_tracking.py SHOT[=MODEL_FRAMES] [SHOT[=MODEL_FRAMES] ...] [--out FILE.json]

:class:`~longanimation.pipeline.correspondence.FlowCarry` moves the keyframe
and the previous frame by the pan it measures between the drawings (step 1
of its ``__call__``). Here that measurement runs over a shot's drawings as
``colorize`` feeds them (a held drawing is not measured again) and is
compared, frame by frame, with the whole-pixel motion of the background on
screen that ``real_shots.py`` rendered (``screen_pans``): the largest error,
the share of frames off by a pixel or more, by 2 or more, and the pan at
the end. With ``MODEL_FRAMES`` (the model's frames of a ``colorize
--correspondence none`` run, as for ``correspondence_replay.py``) the
correspondence is also replayed twice, measuring the pan and being told the
true one: PSNR at 256x256 over frames 1-14 / every frame after 0, so the
difference is what the pan tracking costs on that shot.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from correspondence_replay import replay
from real_shots import screen_pans

from longanimation.atomic import atomic_file
from longanimation.cli.colorize import load_lineart
from longanimation.pipeline.correspondence import FlowCarry


def drawing_key(lineart: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(lineart).tobytes()).hexdigest()


def drawings_and_pans(shot: Path) -> tuple[np.ndarray, np.ndarray]:
    """The shot's line art (T, H, W) and its rendered pan per frame (T, 2)."""
    sketches, _ = load_lineart(shot / "lineart")
    return sketches, screen_pans(json.loads((shot / "manifest.json").read_text()))


def tracking_errors(sketches: np.ndarray, truth: np.ndarray) -> dict:
    """The measured pan of every frame against the rendered one ``truth`` (whole pixels, the larger of x and y)."""
    carry = FlowCarry()
    carry.begin_run(np.zeros((*sketches.shape[1:], 3), np.uint8), sketches[0])
    measured = [np.zeros(2)]
    for index in range(1, len(sketches)):
        if not np.array_equal(sketches[index], sketches[index - 1]):
            carry.track_camera(sketches[index])
            carry.previous_lineart = sketches[index]
        measured.append(np.rint(carry.camera))
    error = np.abs(np.array(measured) - truth).max(axis=1)
    return {"max_error": int(error.max()), "share_off_1": round(float(np.mean(error >= 1)), 3),
            "share_off_2": round(float(np.mean(error >= 2)), 3),
            "true_end": truth[-1].tolist(), "measured_end": measured[-1].astype(int).tolist()}


def known_pan_carry(sketches: np.ndarray, truth: np.ndarray) -> type[FlowCarry]:
    """A :class:`FlowCarry` told the rendered pan ``truth`` of each drawing instead of measuring it."""
    pans: dict[str, np.ndarray] = {}
    for index in range(len(sketches)):  # a drawing shown again later keeps its first pan
        pans.setdefault(drawing_key(sketches[index]), truth[index].astype(np.float64))

    class KnownPan(FlowCarry):
        def track_camera(self, lineart: np.ndarray) -> None:
            self.camera = pans[drawing_key(lineart)].copy()

    return KnownPan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shots", nargs="+", metavar="SHOT[=MODEL_FRAMES]")
    parser.add_argument("--out", type=Path, default=None, help="write the results here (JSON)")
    args = parser.parse_args(argv)
    results = {}
    for spec in args.shots:
        shot, _, frames = (Path(part) if part else None for part in spec.partition("="))
        if not (shot / "manifest.json").is_file() or "camera" not in json.loads(
                (shot / "manifest.json").read_text()).get("setting", {}):
            print(f"pan_tracking: {shot} is not a shot of real_shots.py (no camera in its manifest)", file=sys.stderr)
            return 2
        sketches, truth = drawings_and_pans(shot)
        row = tracking_errors(sketches, truth)
        line = (f"{shot.name:40s} pan end {row['true_end']} measured {row['measured_end']}, max error "
                f"{row['max_error']} px, off by >=1 px {row['share_off_1']:.0%}, >=2 px {row['share_off_2']:.0%}")
        if frames is not None:
            for name, carry_type in (("measured_pan", FlowCarry), ("known_pan", known_pan_carry(sketches, truth))):
                scores = replay(shot, frames, carry_type=carry_type)
                row[name] = {key: scores[key] for key in ("psnr_short", "psnr_long")}
            line += (f"; PSNR measured pan {row['measured_pan']['psnr_short']:.2f} / {row['measured_pan']['psnr_long']:.2f},"
                     f" known pan {row['known_pan']['psnr_short']:.2f} / {row['known_pan']['psnr_long']:.2f} dB")
        results[shot.name] = row
        print(line, flush=True)
    if args.out is not None:
        with atomic_file(args.out) as tmp:
            tmp.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
