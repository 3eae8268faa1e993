"""The toon rows of the real-animation table: copy-keyframe, the model alone, and colorize / --flat / tracked.

    python benchmarks/toon_table.py [--out benchmarks/results/toon-table.md]

Reads two ``tiny_quality.py`` summaries of the same weights and seeds:
``tiny-quality`` (the model alone: ``--correspondence none``, the shipped
model's output before correspondence) and ``tiny-quality-correspondence``
(``colorize``'s default, with ``--flat``). The tracked column is taken from
the first: ``--flat --track-regions`` gives new areas the model's own colors,
so its output is the same with and without the correspondence
(``tests/test_flat_colors.py::test_pipeline_tracked_flat_output_is_flatten_shot_of_the_raw_output``).
PSNR (dB) over the first 14 evaluated frames / over the shot.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
COLUMNS = {  # column -> (summary, metric prefix)
    "copy the keyframe": ("correspondence", "keyframe_copy_"),
    "model alone (`--correspondence none`)": ("none", ""),
    "`colorize`": ("correspondence", ""),
    "`--flat`": ("correspondence", "flat_"),
    "`--flat --track-regions`": ("none", "tracked_"),
}


def table(none: dict, correspondence: dict) -> str:
    rows = {"none": {r["seed"]: r for r in none["shots"]}, "correspondence": {r["seed"]: r for r in correspondence["shots"]}}
    if none["weights"] != correspondence["weights"]:
        raise SystemExit(f"the summaries are of different weights: {none['weights']} vs {correspondence['weights']}")
    seeds = sorted(set(rows["none"]) & set(rows["correspondence"]))
    lines = [f"Weights {none['weights']}; seeds {seeds[0]}-{seeds[-1]}; PSNR (dB) first 14 frames / shot.", "",
             "| seed | " + " | ".join(COLUMNS) + " |", "| --- |" + " --- |" * len(COLUMNS)]
    sums = {column: [0.0, 0.0] for column in COLUMNS}
    for seed in seeds:
        cells = []
        for column, (source, prefix) in COLUMNS.items():
            row = rows[source][seed]
            short, long = row[f"{prefix}short_term_psnr"], row[f"{prefix}long_term_psnr"]
            sums[column][0] += short / len(seeds)
            sums[column][1] += long / len(seeds)
            cells.append(f"{short:.2f} / {long:.2f}")
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    lines.append(f"| mean of {len(seeds)} | " + " | ".join(f"{s:.2f} / {l:.2f}" for s, l in sums.values()) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS / "toon-table.md")
    args = parser.parse_args()
    none = json.loads((RESULTS / "tiny-quality" / "summary.json").read_text())
    correspondence = json.loads((RESULTS / "tiny-quality-correspondence" / "summary.json").read_text())
    args.out.write_text("# Toon seeds: the table of the real-animation issue\n\n" + table(none, correspondence))
    print(args.out.read_text())


if __name__ == "__main__":
    main()
