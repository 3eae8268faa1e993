"""``longanimation info``: the parameter count of every part of a preset."""

from __future__ import annotations

import typer

from .app import app


def _row(label: str, count: int) -> str:
    return f"{label:<34} {count:>15,}  {count / 1e9:8.3f}B"


@app.command("info")
def info(
    preset: str = typer.Option("paper", help="Model preset: paper or tiny."),
) -> None:
    """Build a preset on the meta device (no memory used) and print each part's parameter count."""
    from ..models.longanimation_model import TRAINING_STAGES, LongAnimationModel, count_parameters

    model = LongAnimationModel.from_preset(preset, device="meta")
    memory_own = sum(parameter.numel() for parameter in model.memory_model.parameters(recurse=False))
    rows = [
        ("backbone transformer", count_parameters(model.backbone.transformer)),
        ("backbone VAE", count_parameters(model.backbone.vae)),
        ("backbone text encoder", count_parameters(model.backbone.text_encoder)),
        ("SketchDiT", count_parameters(model.sketch_dit)),
        *((f"memory model {name}", count_parameters(child)) for name, child in model.memory_model.named_children()),
        ("memory model, own parameters", memory_own),
        ("DGLM", count_parameters(model.dglm)),
    ]
    typer.echo(f"preset {preset}: parameters per part")
    for label, count in rows:
        typer.echo(_row(label, count))
    typer.echo(_row("total", count_parameters(model)))
    for stage in TRAINING_STAGES:
        trained = sum(count_parameters(part) for part in model.stage_parts(stage).values())
        typer.echo(_row(f"trainable in stage {stage}", trained) + f"  ({', '.join(TRAINING_STAGES[stage])})")
    segment = model.segment
    typer.echo(
        f"segments: {segment.frames} frames, overlap {segment.overlap}, {segment.num_inference_steps} steps, "
        f"guidance {segment.guidance_scale:g}, fusion in the last {segment.fusion_steps} steps, "
        f"{segment.width}x{segment.height}"
    )
