"""``longanimation convert-official``: the official release's weights as a model folder of ours."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app


@app.command("convert-official")
def convert_official(
    output: Path = typer.Argument(..., metavar="OUT", help="Model folder to write (new or empty, unless --overwrite)."),
    cogvideox: Path = typer.Option(..., "--cogvideox", help="diffusers CogVideoX1.5-5B-I2V folder (the backbone)."),
    control: Path = typer.Option(..., "--control", help="The release's control_module.safetensors (SketchDiT)."),
    glm: Path = typer.Option(..., "--glm", help="The release's glm_module.safetensors (DGLM)."),
    videoxl: Path = typer.Option(..., "--videoxl", help="Video-XL folder: config.json, tokenizer, safetensors."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing model folder OUT."),
    copy_backbone: bool = typer.Option(
        False, "--copy-backbone", help="Copy the CogVideoX folder into OUT (default: OUT/backbone links to it)."
    ),
) -> None:
    """Convert CN-makers/LongAnimation's SketchDiT, DGLM and Video-XL into OUT, runnable with --model OUT."""
    from ..errors import UserError
    from ..models.official import convert_official as convert

    if output.is_dir() and any(output.iterdir()) and not overwrite:
        raise UserError(f"output folder {output} is not empty; pass --overwrite to replace it")

    preset = convert(cogvideox, control, glm, videoxl, output, copy_backbone=copy_backbone)
    typer.echo(f"wrote {output} (preset {preset.name}, official layout)")
