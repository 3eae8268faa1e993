"""``longanimation info``: the parameter count of every part of a preset, and an estimate of its GPU memory.

``--estimate HxW`` adds the peak GPU memory one segment at that model size
needs under each placement of ``colorize`` (``--offload``, ``--vae-tiling``,
``--memory-resident``) with weights in ``--dtype``. It is an estimate, not a
measurement: parameter bytes per part at the dtype, plus the activations of
one segment counted by running its code on meta tensors (nothing computed, no
memory used; attention as a fused SDPA kernel, so no N x N matrix; diffusers'
own VAE code, tiled or not). See :mod:`longanimation.pipeline.gpu_estimate`.
"""

from __future__ import annotations

import typer

from .app import app


def _row(label: str, count: int) -> str:
    return f"{label:<34} {count:>15,}  {count / 1e9:8.3f}B"


@app.command("info")
def info(
    preset: str = typer.Option("paper", help="Model preset: paper or tiny."),
    estimate: str = typer.Option(
        None,
        metavar="HxW",
        help="Also estimate the peak GPU memory of one segment at this model size (e.g. 768x1360), "
        "for each --offload and with or without --vae-tiling. An estimate, not a measurement.",
    ),
    dtype: str = typer.Option("bf16", help="With --estimate: the weights' dtype, fp32, bf16 or fp16."),
) -> None:
    """Build a preset on the meta device (no memory used) and print each part's parameter count.

    With ``--estimate HxW``, also the estimated peak GPU memory per placement (module docstring).
    """
    from ..models.longanimation_model import LongAnimationModel, count_parameters
    from ..training.stages import STAGES
    from ..pipeline.gpu_estimate import parse_size

    size = parse_size(estimate) if estimate is not None else None  # bad input fails before any output
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
    for name, stage in STAGES.items():
        trained = sum(count_parameters(part) for part in stage.trained_parts(model).values())
        note = "" if stage.paper else ", tiny preset only"
        typer.echo(_row(f"trainable in stage {name}", trained) + f"  ({', '.join(stage.trains)}{note})")
    segment = model.segment
    typer.echo(
        f"segments: {segment.frames} frames, overlap {segment.overlap}, {segment.num_inference_steps} steps, "
        f"guidance {segment.guidance_scale:g}, fusion in the last {segment.fusion_steps} steps, "
        f"{segment.width}x{segment.height}"
    )
    if size is not None:
        from ..pipeline.gpu_estimate import estimate as estimate_memory
        from ..pipeline.gpu_estimate import estimate_lines

        lines = estimate_lines(estimate_memory(preset, *size, dtype))
        typer.echo("")
        for line in lines:
            typer.echo(line)
