"""README stills: line art | ours | truth for a few frames of a shot, colored from its first frame.

    python benchmarks/stills.py SHOT OUT.png [--frames 10,60,119] [--model DIR] [--height 160]

``SHOT`` holds ``lineart/`` and ``color/`` (a toon shot, the bundled example,
or a shot of ``benchmarks/real_shots.py``). The shot is colored with
``longanimation colorize``'s defaults from ``color/``'s first frame; each
row of the picture is one frame: its line art, our colors, the truth.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from longanimation.atomic import atomic_file
from longanimation.data.video_io import read_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shot", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--frames", default=None, help="frame positions, comma separated (default: 3 spread out)")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--height", type=int, default=160, help="height of each row in the picture")
    args = parser.parse_args()
    lineart_files = sorted((args.shot / "lineart").iterdir())
    color_files = sorted((args.shot / "color").iterdir())
    count = len(lineart_files)
    frames = [int(v) for v in args.frames.split(",")] if args.frames else [count // 10, count // 2, count - 1]
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "run"
        command = [sys.executable, "-m", "longanimation", "colorize", str(args.shot / "lineart"), str(out),
                   "-k", str(color_files[0]), "--quiet"]
        if args.model is not None:
            command += ["--model", str(args.model)]
        subprocess.run(command, check=True)
        rows = []
        for index in frames:
            panels = [
                read_image(lineart_files[index]),
                read_image(out / "frames" / f"{lineart_files[index].stem}.png"),
                read_image(color_files[index]),
            ]
            height, width = panels[0].shape[:2]
            size = (round(width * args.height / height), args.height)
            gap = np.full((args.height, 4, 3), 255, np.uint8)
            row = [cv2.resize(panel, size, interpolation=cv2.INTER_AREA) for panel in panels]
            rows.append(np.concatenate([row[0], gap, row[1], gap, row[2]], axis=1))
            rows.append(np.full((4, rows[-1].shape[1], 3), 255, np.uint8))
    with atomic_file(args.out) as tmp:
        Image.fromarray(np.concatenate(rows[:-1], axis=0)).save(tmp, format="PNG")


if __name__ == "__main__":
    main()
