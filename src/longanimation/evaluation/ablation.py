"""The paper's ablations (Tables 2 and 3) and the comparison paradigms, on long toon shots.

Every configuration colors the same long toon shots (seeds never used in
training) from the keyframe at frame 0 and is scored with the evaluation
protocol (:func:`~longanimation.evaluation.runner.evaluate`): short-term (the
first 14 frames) and long-term (the whole shot) PSNR and SSIM, PSNR per frame
and the fig. 8 low/high-frequency decay; and with the toon world's flat part
colors (:mod:`~longanimation.evaluation.consistency`) what the memory and the
fusion are for: the color agreement across segments of objects absent from
the keyframe (the spread of their per-segment mean colors, CIELAB ΔE: the
model never saw their colors, only its memory can keep them) and the mean
color jump at the seams between segments. Mean and spread over the seeds.

* Table 2 (modules): SketchDiT alone; + local memory; + global memory;
  + DGLM (both); + CCR (the model after the reward stage). Rows 0-3 use the
  model *before* stage 3 when it is given.
* Table 3 (Color Consistency Fusion start t_st, scaled to the step count from
  the paper's 50 steps): none (0), from the start (50/50), early (40/50),
  late (20/50, the paper's default). Its rows run at their own step count
  (``table3_steps``, default 5): at one or two steps the four settings
  collapse into two, and the question "when should fusion start" has no
  answer.
* Paradigms: local fusion (LVCD: fixed reference, blending at every step, no
  memory) and autoregressive reference (last generated frame).

Frames at the start whose line art is the keyframe's are left out of the
scores (the pipeline returns the keyframe itself there).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..atomic import atomic_file
from .consistency import consistency_report, region_colors
from .region_truth import Region, RegionTruth
from .runner import Networks, evaluate
from .segments import Segmentation

RESULTS_JSON, TABLES_MD, SCORES_JSON = "ablation.json", "ablation.md", "scores-per-seed.json"
SCORE_KEYS = (
    "short_psnr", "long_psnr", "short_ssim", "long_ssim", "low_decay", "high_decay", "absent_spread", "seam_jump"
)
PSNR_PLOT, DECAY_PLOT = "psnr_over_frames.png", "frequency_decay.png"


@dataclass(frozen=True)
class AblationRow:
    """One configuration: which model (before/after stage 3) and which pipeline options."""

    table: str
    label: str
    model: str  # "before-ccr" or "final"
    memory: str = "both"
    fusion_fraction: float | None = None  # t_st / steps; None = the preset default
    paradigm: str = "memory"
    steps: int | None = None  # sampling steps; None = the run's step count

    def fusion_steps(self) -> int | None:
        """t_st in steps, or None for the preset default; needs ``steps`` set when a fraction is."""
        return None if self.fusion_fraction is None else round(self.fusion_fraction * self.steps)


TABLES = {"2": "Table 2", "3": "Table 3", "paradigms": "Paradigms"}
"""The tables by the names ``benchmark ablation --tables`` takes."""


def ablation_rows(
    have_before_ccr: bool, table3_steps: int = 5, tables: tuple[str, ...] = tuple(TABLES.values())
) -> list[AblationRow]:
    """The rows of ``tables`` (values of :data:`TABLES`): Table 2, Table 3 and the paradigms; without a pre-CCR model
    Table 2 uses the final one and has no CCR row."""
    base = "before-ccr" if have_before_ccr else "final"
    rows = [
        AblationRow("Table 2", "0 SketchDiT", base, memory="none"),
        AblationRow("Table 2", "1 + local memory", base, memory="local"),
        AblationRow("Table 2", "2 + global memory", base, memory="global"),
        AblationRow("Table 2", "3 + DGLM (global + local)", base, memory="both"),
    ]
    if have_before_ccr:
        rows.append(AblationRow("Table 2", "4 + CCR", "final", memory="both"))
    for fraction in (0.0, 1.0, 0.8, 0.4):
        start = round(fraction * table3_steps)
        label = f"CCF t_st = {start}/{table3_steps} (paper {round(fraction * 50)}/50)" if start else f"w/o CCF (t_st = 0/{table3_steps})"
        rows.append(AblationRow("Table 3", label, "final", fusion_fraction=fraction, steps=table3_steps))
    rows += [
        AblationRow("Paradigms", "local fusion (LVCD-style)", "final", paradigm="local-fusion"),
        AblationRow("Paradigms", "autoregressive reference", "final", paradigm="autoregressive"),
        AblationRow("Paradigms", "dynamic global-local memory (ours)", "final"),
    ]
    return [row for row in rows if row.table in tables]


def planned_segments(pipeline, lineart: np.ndarray, options) -> Segmentation:
    """The frames each segment of the pipeline's plan contributes, from a keyframe at frame 0."""
    from ..pipeline.long_animation import plan_summary

    groups, jobs = pipeline.plan(lineart, [0], options.resolved(pipeline.model))
    ranges = tuple((entry["frames"][0], entry["frames"][1] + 1) for entry in plan_summary(groups, jobs) if entry["frames"])
    return Segmentation(ranges, "the pipeline's plan", len(lineart))


def consistency_scores(frames: np.ndarray, clip, regions: list[Region], segmentation: Segmentation) -> dict:
    """Mean segment spread (ΔE) of the objects absent from frame 0 seen in two segments or more, mean seam jump."""
    truth = RegionTruth(clip.regions, regions, "flat part colors of the toon world")
    report = consistency_report(region_colors(frames, clip.color, truth), regions, segmentation)
    absent = [
        entry["segment_spread"]
        for entry in report["objects"]
        if entry["absent_in_frame_0"] and entry["segments_visible"] >= 2 and entry["segment_spread"] is not None
    ]
    seam = report["summary"]["mean_seam_jump"]
    return {
        "absent_spread": float(np.mean(absent)) if absent else float("nan"),
        "seam_jump": float("nan") if seam is None else seam,
    }


def score_row(pipeline, row: AblationRow, clip, start: int, prompt: str, seed: int, regions: list[Region]) -> dict:
    """Color one shot with ``row``'s options; score frames ``start:``, and the consistency over the shot."""
    from ..pipeline.long_animation import ColorizeOptions

    # The tables measure the model's mechanisms: its frames as it makes them, no correspondence carried.
    height, width = clip.lineart.shape[1:]
    options = ColorizeOptions(
        height=height,  # the model at the world's own size
        width=width,
        memory=row.memory,
        num_inference_steps=row.steps,
        fusion_steps=row.fusion_steps(),
        paradigm=row.paradigm,
        seed=seed,
        correspondence="none",
    )
    out = pipeline(clip.lineart, {0: clip.color[0]}, prompt, options)
    report = evaluate(out.frames[start:], clip.color[start:], Networks())
    return {
        "short_psnr": report["table"]["short_term"]["psnr"],
        "long_psnr": report["table"]["long_term"]["psnr"],
        "short_ssim": report["table"]["short_term"]["ssim"],
        "long_ssim": report["table"]["long_term"]["ssim"],
        "low_decay": report["frequency"]["low_decay"],
        "high_decay": report["frequency"]["high_decay"],
        "psnr_per_frame": report["per_frame"]["psnr"],
        **consistency_scores(out.frames, clip, regions, planned_segments(pipeline, clip.lineart, options)),
    }


def run_ablation(
    models: dict[str, object],
    seeds: list[int],
    frames: int,
    size: int,
    out_dir: Path,
    *,
    steps: int | None = None,
    table3_steps: int = 5,
    tables: tuple[str, ...] = tuple(TABLES.values()),
    command: str = "",
    report: Callable[[str], None] = print,
) -> dict:
    """Every row on every seed; writes ablation.json, ablation.md and the two plots into ``out_dir``.

    ``steps`` is the sampling step count of Table 2 and the paradigms (None: the
    final model's default); Table 3 runs at ``table3_steps``; only the rows of
    ``tables`` are colored (one table of a large model at a time). Each finished seed's
    scores are saved (``scores-per-seed.json``), and a rerun with the same model
    weights, frames, size and rows skips the seeds it holds, whatever its command
    line: an interrupted run goes on where it stopped, another seed list adds the
    seeds missing.
    """
    from ..data.toon import ToonConfig, ToonWorld
    from ..pipeline.long_animation import LongAnimationPipeline
    from .region_truth import manifest_regions

    pipelines = {name: LongAnimationPipeline(model) for name, model in models.items()}
    run_steps = steps or models["final"].segment.num_inference_steps
    rows = [
        row if row.steps else replace(row, steps=run_steps) for row in ablation_rows("before-ccr" in models, table3_steps, tables)
    ]
    # What decides a seed's scores; not the command, which names the seed list and the output folder,
    # so that seeds colored by separate runs (one seed per session) add up in one folder.
    setting = {
        "weights": {name: model.weights_digest() for name, model in sorted(models.items())},
        "frames": frames,
        "size": size,
        "rows": [[row.label, row.steps] for row in rows],  # lists: the JSON round trip must compare equal
        "metrics": list(SCORE_KEYS),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    saved = json.loads((out_dir / SCORES_JSON).read_text()) if (out_dir / SCORES_JSON).exists() else {}
    by_seed = saved.get("scores", {}) if saved.get("setting") == setting else {}
    for seed in (seed for seed in seeds if str(seed) not in by_seed):
        world = ToonWorld(ToonConfig(seed=seed, frames=frames, height=size, width=size))
        clip = world.render_range(0, frames)
        # The pipeline returns the keyframe itself for frames whose line art is the keyframe's
        # (a new drawing index can repeat the same line art): score from the first one that differs.
        start = next((i for i, sketch in enumerate(clip.lineart) if not np.array_equal(sketch, clip.lineart[0])), 1)
        regions = manifest_regions(world.manifest(), f"toon world {seed}")
        by_seed[str(seed)] = {}
        for row in rows:
            scores = score_row(pipelines[row.model], row, clip, start, world.caption, seed, regions)
            by_seed[str(seed)][row.label] = scores
            report(
                f"seed {seed} {row.table} {row.label}: long-term PSNR {scores['long_psnr']:.2f}, "
                f"absent-object spread {scores['absent_spread']:.2f}, seam jump {scores['seam_jump']:.2f}"
            )
        with atomic_file(out_dir / SCORES_JSON) as tmp:
            tmp.write_text(json.dumps({"setting": setting, "scores": by_seed}) + "\n")
    scores = {row.label: [by_seed[str(seed)][row.label] for seed in seeds] for row in rows}
    summary = {"command": command, "weights": setting["weights"], "seeds": seeds, "frames": frames, "size": size, "rows": []}
    for row in rows:
        entry = {"table": row.table, "label": row.label, "model": row.model, "steps": row.steps}
        for key in SCORE_KEYS:
            values = np.array([score[key] for score in scores[row.label]], dtype=float)
            values = values[~np.isnan(values)]  # a seed may have no absent object seen in two segments
            entry[key] = {"mean": float(values.mean()), "std": float(values.std())} if len(values) else None
        entry["psnr_per_frame_mean"] = mean_curve([s["psnr_per_frame"] for s in scores[row.label]]).tolist()
        summary["rows"].append(entry)
    with atomic_file(out_dir / RESULTS_JSON) as tmp:
        tmp.write_text(json.dumps(summary, indent=1) + "\n")
    with atomic_file(out_dir / TABLES_MD) as tmp:
        tmp.write_text(ablation_markdown(summary))
    plot_ablation(summary, out_dir)
    return summary


def mean_curve(curves: list[list[float]]) -> np.ndarray:
    """Mean of per-frame curves over seeds, cut to the shortest (seeds skip different held starts)."""
    length = min(len(curve) for curve in curves)
    return np.mean([curve[:length] for curve in curves], axis=0)


def ablation_markdown(summary: dict) -> str:
    """Tables 2, 3 and the paradigms: mean ± std over the seeds."""

    def cell(stat: dict | None, digits: int) -> str:
        return "n/a" if stat is None else f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"

    lines = [
        "# Ablations on long toon shots",
        "",
        f"Command: `{summary['command']}`  ",
        "Weights: " + ", ".join(f"{name} {digest}" for name, digest in summary["weights"].items()) + "  ",
        f"Seeds {summary['seeds']} (never used in training), {summary['frames']} frames at "
        f"{summary['size']}x{summary['size']}; mean ± std over seeds. Short-term = first 14 scored frames. "
        "Absent-object spread: ΔE spread of the per-segment mean colors of objects the keyframe does not show "
        "(lower = kept across segments); seam jump: mean ΔE color change across seams beyond the truth's.",
    ]
    for table in dict.fromkeys(row["table"] for row in summary["rows"]):
        lines += [
            "",
            f"## {table}",
            "",
            "| setting | steps | PSNR short | PSNR long | SSIM short | SSIM long | low-freq decay | high-freq decay "
            "| absent-object spread ΔE | seam jump ΔE |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for row in (r for r in summary["rows"] if r["table"] == table):
            lines.append(
                f"| {row['label']} | {row['steps']} | {cell(row['short_psnr'], 2)} | {cell(row['long_psnr'], 2)} | "
                f"{cell(row['short_ssim'], 3)} | {cell(row['long_ssim'], 3)} | {cell(row['low_decay'], 3)} | "
                f"{cell(row['high_decay'], 3)} | {cell(row['absent_spread'], 2)} | {cell(row['seam_jump'], 2)} |"
            )
    return "\n".join(lines) + "\n"


def plot_ablation(summary: dict, out_dir: Path) -> None:
    """PSNR over frame index per setting, and low/high-frequency decay bars (fig. 8 (b, c))."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 1, figsize=(9, 4.5))
    for row in summary["rows"]:
        curve = np.asarray(row["psnr_per_frame_mean"])
        window = min(9, len(curve))
        smooth = np.convolve(curve, np.ones(window) / window, mode="valid")
        axes.plot(smooth, label=row["label"], linewidth=1)
    axes.set(xlabel="frame (after the keyframe's drawing)", ylabel="PSNR (dB, mean over seeds)", title="PSNR over the shot")
    axes.legend(fontsize=6, ncol=2)
    figure.tight_layout()
    with atomic_file(out_dir / PSNR_PLOT) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    plt.close(figure)

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=False)
    labels = [row["label"] for row in summary["rows"]]
    for axis, key, title in ((axes[0], "low_decay", "low frequencies (colors)"), (axes[1], "high_decay", "high frequencies (lines)")):
        axis.barh(labels, [row[key]["mean"] for row in summary["rows"]], xerr=[row[key]["std"] for row in summary["rows"]])
        axis.set(xlabel="relative PSNR decay, first 14 frames -> whole shot", title=title)
        axis.tick_params(axis="y", labelsize=6)
    figure.tight_layout()
    with atomic_file(out_dir / DECAY_PLOT) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    plt.close(figure)
