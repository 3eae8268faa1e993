"""Score the correspondence alone, in seconds, over model frames saved from a ``--correspondence none`` run.

    python benchmarks/correspondence_replay.py SHOT=MODEL_FRAMES [SHOT=MODEL_FRAMES ...] [--out FILE.json]

The model does not see what the correspondence makes of its frames (the
pipeline carries colors after each segment is generated, and the memory takes
the model's frames), so ``colorize`` equals the model's frames of
``colorize --correspondence none`` passed through :class:`FlowCarry` frame by
frame. Replaying the carry over saved frames measures a change to
``pipeline/correspondence.py`` on a whole validation set in a minute instead
of the half hour ``real_quality.py`` takes. Keep the model frames with
``real_quality.py --variant "none=--correspondence none" --keep DIR`` (then
``MODEL_FRAMES`` is ``DIR/SHOT/none/frames``) or ``colorize --correspondence none``.

``SHOT`` is a folder with ``lineart/`` and ``color/`` (``toon generate`` and
``real_shots.py`` write them), colored from its frame 0; a drawing equal to
the one before it repeats the frame before, and a drawing that comes back
later is carried again, exactly as the pipeline colors them (a test checks
that these are ``colorize``'s frames). Scores follow ``real_quality.py``:
PSNR at 256x256 per frame, ``short`` = frames 1-14, ``long`` = every frame after 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from longanimation.atomic import atomic_file
from longanimation.cli.colorize import load_lineart
from longanimation.data.video_io import list_image_files, read_image
from longanimation.evaluation.frame_metrics import (
    SHORT_TERM_FRAMES,
    psnr_per_frame,
    to_protocol,
)
from longanimation.pipeline.correspondence import FlowCarry


def carried_frames(shot: Path, model_frames: Path, carry_type: type[FlowCarry] = FlowCarry) -> Iterator[np.ndarray]:
    """``colorize``'s frames of ``shot`` from its frame 0: the saved model frames carried by ``carry_type``
    (built without arguments), frame 0 (the keyframe) first."""
    sketches, _ = load_lineart(shot / "lineart")
    truth_files, model_files = list_image_files(shot / "color"), list_image_files(model_frames)
    if len(model_files) != len(truth_files) or len(truth_files) != len(sketches):
        raise SystemExit(f"{shot}: {len(sketches)} drawings, {len(truth_files)} colored, {len(model_files)} model frames")
    carry = carry_type()
    image = read_image(truth_files[0])
    carry.begin_run(image, sketches[0])
    yield image
    for index in range(1, len(sketches)):
        if not np.array_equal(sketches[index], sketches[index - 1]):
            image = carry(sketches[index], read_image(model_files[index]))
        yield image


def replay(shot: Path, model_frames: Path, carry_type: type[FlowCarry] = FlowCarry) -> dict:
    """Carry ``shot``'s keyframe (frame 0) over the saved model frames; its per-frame PSNR and means."""
    truth_files = list_image_files(shot / "color")
    frames = carried_frames(shot, model_frames, carry_type)
    next(frames)
    psnr = [float(psnr_per_frame(to_protocol(image[None]), to_protocol(read_image(truth)[None]))[0])
            for image, truth in zip(frames, truth_files[1:], strict=True)]
    after = np.array(psnr)
    return {"psnr_short": round(float(after[:SHORT_TERM_FRAMES].mean()), 3),
            "psnr_long": round(float(after.mean()), 3), "psnr_per_frame": [round(v, 3) for v in psnr]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pairs", nargs="+", metavar="SHOT=MODEL_FRAMES")
    parser.add_argument("--out", type=Path, default=None, help="write the scores here (JSON)")
    args = parser.parse_args(argv)
    results = {}
    for pair in args.pairs:
        shot, sep, frames = pair.partition("=")
        if not sep:
            parser.error(f"expected SHOT=MODEL_FRAMES, got {pair!r}")
        results[Path(shot).name] = replay(Path(shot), Path(frames))
        print(f"{Path(shot).name:40s} short {results[Path(shot).name]['psnr_short']:6.2f}  "
              f"long {results[Path(shot).name]['psnr_long']:6.2f} dB", flush=True)
    means = {key: round(float(np.mean([r[key] for r in results.values()])), 3) for key in ("psnr_short", "psnr_long")}
    print(f"{'mean':40s} short {means['psnr_short']:6.2f}  long {means['psnr_long']:6.2f} dB")
    if args.out is not None:
        with atomic_file(args.out) as tmp:
            tmp.write_text(json.dumps({"shots": results, "mean": means}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
