"""``longanimation evaluate``: compare a colorized shot with its ground truth (Tables 1-3, fig. 8).

Writes a JSON report (``--out``) and a Markdown summary next to it, and prints
the Markdown. Heavy metrics run only with local safetensors weights; nothing
is downloaded. Every input is checked (and the weights loaded) before any
output is written.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from ..errors import UserError
from .app import app

SHOT_HELP = "Folder of images, video file or single image."
WEIGHTS_HELP = (
    "{what} as a local .safetensors file (key layout: longanimation.evaluation.networks.{module}); "
    "{metric} is skipped without it."
)


@app.command("evaluate")
def evaluate_command(
    pred: Path = typer.Option(..., "--pred", help=f"Colorized shot to evaluate. {SHOT_HELP}"),
    gt: Path = typer.Option(..., "--gt", help=f"Ground-truth shot (same frame count). {SHOT_HELP}"),
    ids: Path = typer.Option(
        None, "--ids", help="Folder of 16-bit PNG region-id maps aligned with --gt (e.g. a toon world's regions/)."
    ),
    keyframe_ids: list[Path] = typer.Option(
        None,
        "--keyframe-ids",
        help="Region-id map (PNG) of a keyframe the shot was colored from; repeat for several. Adds keyframe "
        "coverage: PSNR over pixels of regions a keyframe shows, and the share of pixels none shows.",
    ),
    manifest: Path = typer.Option(
        None,
        help="Toon manifest naming each region's object, part and flat color (default: manifest.json next to --ids).",
    ),
    segments: Path = typer.Option(
        None,
        help="The generation segments: colorize's segments.json or a JSON list of [start, end) frame ranges "
        "(default: segments.json next to --pred, if there).",
    ),
    segment_length: int = typer.Option(
        None, help="Without a segments file: assume segments of this many frames (default: the official 81-frame plan)."
    ),
    lpips_weights: Path = typer.Option(
        None, help=WEIGHTS_HELP.format(what="AlexNet + LPIPS heads", module="lpips_alexnet", metric="LPIPS")
    ),
    inception_weights: Path = typer.Option(
        None, help=WEIGHTS_HELP.format(what="FID Inception-v3", module="inception", metric="FID")
    ),
    i3d_weights: Path = typer.Option(
        None, help=WEIGHTS_HELP.format(what="Kinetics-400 I3D", module="i3d", metric="FVD")
    ),
    out: Path = typer.Option(
        None, help="JSON report; the Markdown is written next to it (.md) (default: report.json beside --pred)."
    ),
    color_threshold: float = typer.Option(10.0, help="ΔE (CIELAB) above which (object, frame) pairs are listed."),
    device: str = typer.Option("auto", help="Device for LPIPS/FID/FVD: auto, cpu or cuda[:N]."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success."),
) -> None:
    """Evaluate a colorized shot: PSNR, SSIM, LPIPS, FID, FVD, frequency decay and region color consistency."""
    import numpy as np

    from ..data.video_io import read_shot
    from ..evaluation.region_truth import load_region_truth, read_region_map
    from ..evaluation.report import markdown_path, write_report
    from ..evaluation.runner import ConsistencyInputs, Networks, check_frame_sizes, evaluate, resolve_device
    from ..evaluation.segments import fixed_segments, official_segments, read_segments

    started = time.perf_counter()
    out = out if out is not None else pred.parent / "report.json"
    markdown_file = markdown_path(out)
    if ids is None and (keyframe_ids or any(option is not None for option in (manifest, segments, segment_length))):
        raise UserError(
            "--keyframe-ids, --manifest, --segments and --segment-length describe region maps: give --ids too"
        )
    if segments is not None and segment_length is not None:
        raise UserError("give either --segments or --segment-length, not both")
    for path, option in ((pred, "--pred"), (gt, "--gt")):
        if not path.exists():
            raise UserError(f"{option} {path} does not exist")
    networks = Networks.load(lpips_weights, inception_weights, i3d_weights, resolve_device(device))
    pred_shot, gt_shot = read_shot(pred), read_shot(gt)
    if pred_shot.num_frames != gt_shot.num_frames:
        raise UserError(f"--pred has {pred_shot.num_frames} frames but --gt has {gt_shot.num_frames}; they must match")
    try:
        check_frame_sizes(pred_shot.frames.shape, gt_shot.frames.shape)
    except UserError as error:
        raise UserError(f"--pred {pred} and --gt {gt} do not match: {error}") from None
    consistency = None
    if ids is not None:
        truth = load_region_truth(ids, manifest)
        frames = gt_shot.num_frames
        if segments is None and segment_length is None and (pred.parent / "segments.json").is_file():
            segments = pred.parent / "segments.json"
        if segments is not None:
            segmentation = read_segments(segments, frames)
        elif segment_length is not None:
            segmentation = fixed_segments(frames, segment_length)
        else:
            segmentation = official_segments(frames)
        keyframe_maps = None
        if keyframe_ids:
            keyframe_maps = [read_region_map(path) for path in keyframe_ids]
            if len({m.shape for m in keyframe_maps}) > 1:
                raise UserError("the --keyframe-ids maps differ in size")
            keyframe_maps = np.stack(keyframe_maps)
        consistency = ConsistencyInputs(truth, segmentation, color_threshold, keyframe_maps)
    report = {
        "inputs": {
            "pred": str(pred),
            "gt": str(gt),
            "pred_size": [pred_shot.width, pred_shot.height],
            "gt_size": [gt_shot.width, gt_shot.height],
            "ids": None if ids is None else str(ids),
            "keyframe_ids": [str(path) for path in keyframe_ids or ()],
        },
        **evaluate(pred_shot.frames, gt_shot.frames, networks, consistency),
    }
    report["timings_s"]["total"] = round(time.perf_counter() - started, 3)
    markdown = write_report(report, out)
    if not quiet:
        typer.echo(markdown, nl=False)
        typer.echo(f"wrote {out} and {markdown_file}")
