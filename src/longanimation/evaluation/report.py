"""Writing an evaluation report: the JSON as computed, and a Markdown summary next to it.

``write_report(report, "out/report.json")`` writes ``out/report.json`` and
``out/report.md`` (same stem), each atomically, and returns the Markdown.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..atomic import atomic_file
from ..errors import UserError

TABLE_COLUMNS = (
    ("lpips", "LPIPS ↓", 4),
    ("ssim", "SSIM ↑", 4),
    ("psnr", "PSNR ↑", 2),
    ("fvd", "FVD ↓", 2),
    ("fid", "FID ↓", 2),
)
SHOWN_ROWS = 10


def _number(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _rows(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _main_table(report: dict) -> list[str]:
    protocol = report["protocol"]
    rows = []
    for key, label in (
        ("short_term", f"short-term (first {protocol['short_term_frames']})"),
        ("long_term", f"long-term (all {protocol['long_term_frames']})"),
    ):
        cells = report["table"][key]
        rows.append([label] + ["skipped" if cells[m] is None else _number(cells[m], d) for m, _, d in TABLE_COLUMNS])
    lines = _rows(["frames"] + [title for _, title, _ in TABLE_COLUMNS], rows)
    if report["skipped"]:
        lines += [""] + [f"- {metric.upper()} {reason}" for metric, reason in report["skipped"].items()]
    return lines


def _frequency(report: dict) -> list[str]:
    freq = report["frequency"]
    rows = [
        [
            band,
            _number(freq[f"{key}_psnr_short"]),
            _number(freq[f"{key}_psnr_long"]),
            f"{100 * freq[f'{key}_decay']:.2f}%",
        ]
        for band, key in (("low (colors)", "low"), ("high (lines)", "high"))
    ]
    return [
        "## Frequency analysis (fig. 8)",
        "",
        f"FFT split at {freq['cutoff']} of the Nyquist radius; decay = (short-term - long-term) / short-term PSNR.",
        "",
        *_rows(["band", "PSNR short-term", "PSNR long-term", "relative decay"], rows),
    ]


def _consistency(section: dict) -> list[str]:
    if "skipped" in section:
        return ["## Color consistency", "", section["skipped"]]
    summary, threshold = section["summary"], section["threshold_delta_e"]
    lines = [
        "## Color consistency",
        "",
        f"Reference: {section['reference']}. Colors: {section['color_space']}.",
        f"Segments: {section['segments']['source']}; seams (frame pairs): "
        + (", ".join(f"{a}→{b}" for a, b in section["segments"]["seams"]) or "none"),
        "",
        f"Mean ΔE {_number(summary['mean_delta_e'])}; "
        f"mean spread across segments {_number(summary['mean_segment_spread'])}; "
        f"mean seam jump {_number(summary['mean_seam_jump'])}.",
        "",
        "### Objects",
        "",
    ]
    rows = [
        [
            obj["object"] + (" (not in frame 0)" if obj["absent_in_frame_0"] else ""),
            str(obj["frames_visible"]),
            _number(obj["mean_delta_e"]),
            f"{_number(obj['max_delta_e'])} @ {obj['worst_frame']}" if obj["worst_frame"] is not None else "–",
            f"{_number(obj['segment_spread'])} ({_number(obj['reference_segment_spread'])})",
            _number(obj["max_seam_jump"]),
        ]
        for obj in section["objects"]
    ]
    lines += _rows(
        ["object", "frames seen", "mean ΔE", "max ΔE @ frame", "segment spread (reference)", "max seam jump"], rows
    )
    for key, title in (
        ("worst", f"Worst (object, frame): worst part ΔE above {threshold}"),
        (
            "worst_jumps",
            f"Worst color jumps (from the previous frame, beyond the reference's change) above {threshold}",
        ),
    ):
        entries = section[key][:SHOWN_ROWS]
        lines += ["", f"### {title}", ""]
        if entries:
            rows = [[e["object"], str(e["frame"]), e["part"], _number(e["delta_e"])] for e in entries]
            lines += _rows(["object", "frame", "part", "ΔE"], rows)
        else:
            lines.append("none")
    if section["seams"]:
        rows = [
            [
                f"{s['frames'][0]}→{s['frames'][1]}",
                _number(s["mean_jump"]),
                s["worst_object"] or "–",
                _number(s["worst_jump"]),
            ]
            for s in section["seams"]
        ]
        lines += ["", "### Seams", "", *_rows(["frames", "mean jump ΔE", "worst object", "its jump"], rows)]
    return lines


def _keyframe_coverage(section: dict) -> list[str]:
    rows = [
        [label, f"{100 * section[f'uncovered_fraction_{term}']:.2f}%", _number(section[f"psnr_{term}"]),
         _number(section[f"covered_psnr_{term}"])]
        for term, label in (("short", "short-term"), ("long", "long-term"))
    ]
    return [
        "## Keyframe coverage",
        "",
        f"Pixels of regions none of the {section['keyframes']} keyframe(s) shows have colors no reference gives; "
        "PSNR over the covered pixels is what a reference-based method could reach.",
        "",
        *_rows(["frames", "pixels not in a keyframe", "PSNR all pixels", "PSNR covered pixels"], rows),
        "",
        "Long-term PSNR if the covered pixels kept their short-term error (the decay left is the uncovered "
        f"pixels'): {_number(section['psnr_long_without_covered_decay'])}",
    ]


def to_markdown(report: dict) -> str:
    """The report as Markdown: Table 1 row pair, frequency analysis, color consistency, keyframe coverage, notes."""
    lines = ["# Evaluation report", ""]
    inputs = report.get("inputs")
    if inputs:
        lines += [
            f"Prediction `{inputs['pred']}` against ground truth `{inputs['gt']}`, {report['frames']} frames.",
            "",
        ]
    lines += _main_table(report) + [""] + _frequency(report) + [""] + _consistency(report["consistency"])
    if "keyframe_coverage" in report:
        lines += [""] + _keyframe_coverage(report["keyframe_coverage"])
    lines += ["", "## Notes", ""] + [f"- {note}" for note in report["notes"]]
    return "\n".join(lines) + "\n"


def markdown_path(path: str | os.PathLike) -> Path:
    """The Markdown file next to JSON report ``path``; :class:`UserError` unless ``path`` ends in .json."""
    path = Path(path)
    if path.suffix.lower() != ".json":
        raise UserError(f"--out {path} must name a .json file (the Markdown goes next to it as .md)")
    return path.with_suffix(".md")


def write_report(report: dict, path: str | os.PathLike) -> str:
    """Write ``path`` (.json) and the Markdown next to it (.md), each atomically; returns the Markdown."""
    markdown_file = markdown_path(path)
    markdown = to_markdown(report)
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    with atomic_file(markdown_file) as tmp:
        tmp.write_text(markdown, encoding="utf-8")
    return markdown
