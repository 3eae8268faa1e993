"""The whole LongAnimation model: backbone, SketchDiT, memory model and DGLM, saved as one folder.

Folder layout (written atomically by :meth:`LongAnimationModel.save_pretrained`)::

    longanimation.json   format, version, preset name, segment defaults, backbone location,
                         sha256 of every weights file
    backbone/            diffusers CogVideoX I2V layout (transformer/ vae/ text_encoder/ tokenizer/ scheduler/)
    sketch_dit/          config.json + model.safetensors
    memory_model/        config.json + model.safetensors
    dglm/                config.json + model.safetensors

A folder may be saved without ``backbone/`` (the 5.6 B backbone never changes);
it is then loaded with ``backbone=`` pointing at a CogVideoX snapshot. Nothing
is ever unpickled: weights are safetensors only. Loading checks the index's
types, that the backbone has the shapes of the preset the index names, and the
sha256 of every weights file the index lists (folders saved before digests
were recorded load without that check).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..atomic import atomic_dir
from ..errors import UserError
from .backbone import TEXT_ENCODER, TRANSFORMER, VAE, CogVideoXBackbone
from ..typed_config import build_dataclass, checked_value
from .checkpoint import file_sha256, read_config
from .dglm import GlobalLocalMemory
from .memory_model import LongVideoMemoryModel
from .presets import PRESET_NAMES, Preset, SegmentDefaults, get_preset
from .sketch_dit import SketchControlledTransformer, SketchDiT
from .text_tokenizer import build_toon_tokenizer

INDEX_NAME = "longanimation.json"
FORMAT = "longanimation"
FORMAT_VERSION = 1
BACKBONE, SKETCH_DIT, MEMORY_MODEL, DGLM = "backbone", "sketch_dit", "memory_model", "dglm"
DIGESTS = "sha256"  # index key: weights file (path relative to the folder) -> hex sha256 of its bytes
WEIGHTS_SUFFIX = ".safetensors"
# Backbone config values that set tensor shapes: they tell the presets apart.
PRESET_SHAPE_KEYS = {
    TRANSFORMER: (
        "num_layers",
        "num_attention_heads",
        "attention_head_dim",
        "in_channels",
        "out_channels",
        "patch_size",
        "patch_size_t",
        "text_embed_dim",
    ),
    VAE: ("block_out_channels", "latent_channels", "layers_per_block"),
}
PARTS = {SKETCH_DIT: SketchDiT, MEMORY_MODEL: LongVideoMemoryModel, DGLM: GlobalLocalMemory}

def count_parameters(module: nn.Module) -> int:
    """Number of parameters (works on the meta device)."""
    return sum(parameter.numel() for parameter in module.parameters())


class LongAnimationModel(nn.Module):
    """Frozen CogVideoX backbone + SketchDiT + long-video memory model + DGLM, and their defaults."""

    def __init__(
        self,
        backbone: CogVideoXBackbone,
        sketch_dit: SketchDiT,
        memory_model: LongVideoMemoryModel,
        dglm: GlobalLocalMemory,
        *,
        preset: str,
        segment: SegmentDefaults,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.sketch_dit = sketch_dit
        self.memory_model = memory_model
        self.dglm = dglm
        self.preset = preset
        self.segment = segment
        self._check_compatible()

    def _check_compatible(self) -> None:
        transformer, memory = self.backbone.transformer.config, self.memory_model.config
        dglm = self.dglm.config
        groups = (
            {
                "backbone width": transformer.num_attention_heads * transformer.attention_head_dim,
                "SketchDiT width": self.sketch_dit.config.inner_dim,
                "DGLM width": dglm.sketch_dim,
            },
            {"memory model KV width": memory.kv_width, "DGLM memory width": dglm.memory_dim},
            {"memory model layers": len(memory.memory_layers), "DGLM layers": dglm.num_layers},
        )
        problems = [
            " / ".join(f"{label} {value}" for label, value in group.items())
            for group in groups
            if len(set(group.values())) > 1
        ]
        if problems:
            raise UserError("model parts do not fit together: " + "; ".join(problems))

    # ------------------------------------------------------------------ use
    def denoiser(self) -> SketchControlledTransformer:
        """The controlled transformer of eq. 3 / eq. 4 over this model's backbone, SketchDiT and DGLM."""
        return SketchControlledTransformer(self.backbone.transformer, self.sketch_dit, self.dglm)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_preset(
        cls, name: str, *, device: torch.device | str = "cpu", seed: int = 0
    ) -> LongAnimationModel:
        """Random-initialised model of preset ``name`` (``"meta"`` allocates nothing: for counting).

        SketchDiT starts as a copy of the backbone's first blocks with a zero
        output projection; DGLM's output projection is zero too. The paper
        preset has no tokenizer (T5's comes with a CogVideoX snapshot).
        """
        preset = get_preset(name)
        with torch.random.fork_rng(devices=[]), torch.device(device):
            torch.manual_seed(seed)
            tokenizer = None
            if preset.toon_tokenizer:
                tokenizer = build_toon_tokenizer(preset.backbone.transformer["max_text_seq_length"])
            backbone = CogVideoXBackbone.from_config(preset.backbone, tokenizer)
            return cls(
                backbone,
                SketchDiT.from_backbone(backbone.transformer, preset.sketch_dit),
                LongVideoMemoryModel(preset.memory_model),
                GlobalLocalMemory(preset.dglm),
                preset=preset.name,
                segment=preset.segment,
            )

    @classmethod
    def from_parts(
        cls,
        backbone: CogVideoXBackbone | str | os.PathLike,
        *,
        preset: str = "paper",
        sketch_dit: str | os.PathLike | None = None,
        memory_model: str | os.PathLike | None = None,
        dglm: str | os.PathLike | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        seed: int = 0,
    ) -> LongAnimationModel:
        """A CogVideoX snapshot (folder or loaded backbone) plus our parts' folders.

        A part not given is created from the preset: SketchDiT from the
        backbone's first blocks (the start of stage 1), DGLM with a zero output
        (the start of stage 2), the memory model randomly initialised (only
        sensible for ``tiny``: the paper's is Video-XL, converted to our layout).
        """
        if not isinstance(backbone, CogVideoXBackbone):
            backbone = CogVideoXBackbone.from_pretrained(backbone, dtype=dtype)
        settings = get_preset(preset)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = cls(
                backbone,
                SketchDiT.from_pretrained(sketch_dit, dtype=dtype)
                if sketch_dit is not None
                else SketchDiT.from_backbone(backbone.transformer, settings.sketch_dit),
                LongVideoMemoryModel.from_pretrained(memory_model, dtype=dtype)
                if memory_model is not None
                else LongVideoMemoryModel(settings.memory_model),
                GlobalLocalMemory.from_pretrained(dglm, dtype=dtype)
                if dglm is not None
                else GlobalLocalMemory(settings.dglm),
                preset=settings.name,
                segment=settings.segment,
            )
        return model.to(device=device, dtype=dtype)

    @classmethod
    def from_pretrained(
        cls,
        directory: str | os.PathLike,
        *,
        backbone: CogVideoXBackbone | str | os.PathLike | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> LongAnimationModel:
        """Load a folder written by :meth:`save_pretrained`; ``backbone`` overrides/supplies the backbone."""
        directory = Path(directory)
        index = _read_index(directory)
        where = directory / INDEX_NAME
        preset = get_preset(index["preset"])
        for name, part in PARTS.items():  # every config checked before any weights are read
            read_config(directory / name, part.config_class)
        own_backbone = backbone is None
        if own_backbone:
            if index["backbone"] is None:
                raise UserError(f"{directory} was saved without its backbone: pass the CogVideoX folder as backbone")
            backbone = directory / index["backbone"]
        if isinstance(backbone, CogVideoXBackbone):
            _check_preset_shapes(
                {TRANSFORMER: dict(backbone.transformer.config), VAE: dict(backbone.vae.config)},
                preset,
                where,
                "the given backbone",
            )
        else:
            _check_backbone_folder(Path(backbone), preset, where)
            backbone = CogVideoXBackbone.from_pretrained(backbone, dtype=dtype)
        parts = {name: part.from_pretrained(directory / name, dtype=dtype) for name, part in PARTS.items()}
        skip = () if own_backbone else (f"{index['backbone']}/",) if index["backbone"] else ()
        _verify_digests(directory, index[DIGESTS], skip)
        model = cls(backbone, **parts, preset=index["preset"], segment=index["segment"])
        return model.to(device=device, dtype=dtype)

    def weights_digest(self) -> str:
        """sha256 (hex, 16 digits) of every parameter and buffer: tells two models apart whatever folder they came from."""
        digest = hashlib.sha256()
        for name, tensor in sorted(self.state_dict().items()):
            tensor = tensor.detach().cpu().contiguous()
            digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
        return digest.hexdigest()[:16]

    def save_pretrained(self, directory: str | os.PathLike, *, include_backbone: bool = True) -> None:
        """Write the model folder atomically (without ``backbone/`` when ``include_backbone`` is False)."""
        with atomic_dir(directory) as tmp:
            if include_backbone:
                self.backbone.save_pretrained(tmp / BACKBONE)
            for name in PARTS:
                getattr(self, name).save_pretrained(tmp / name)
            index = {
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "preset": self.preset,
                "segment": dataclasses.asdict(self.segment),
                "backbone": BACKBONE if include_backbone else None,
                DIGESTS: weights_digests(tmp),
            }
            (tmp / INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n")


def weights_digests(directory: Path) -> dict[str, str]:
    """sha256 of every weights file under ``directory``, keyed by its path relative to it (``/``-separated)."""
    files = sorted(path for path in directory.rglob(f"*{WEIGHTS_SUFFIX}") if path.is_file())
    return {path.relative_to(directory).as_posix(): file_sha256(path) for path in files}


def _verify_digests(directory: Path, digests: dict[str, str] | None, skip: tuple[str, ...] = ()) -> None:
    """Refuse a weights file whose bytes are not those the index recorded (paths under ``skip`` not read)."""
    for name, expected in (digests or {}).items():
        if name.startswith(skip):
            continue
        path = directory / name
        if not path.is_file():
            raise UserError(f"weights file {path} listed in {directory / INDEX_NAME} is missing")
        actual = file_sha256(path)
        if actual != expected:
            raise UserError(
                f"weights file {path} is corrupt: its sha256 is {actual[:16]}..., {INDEX_NAME} records "
                f"{expected[:16]}...; download or copy the model again"
            )


def _check_backbone_folder(folder: Path, preset: Preset, where: Path) -> None:
    """Check a backbone folder's config files before its weights are read: value types, then the preset's shapes.

    Only keys the preset sets are checked (a value of the preset's type, or
    null); a missing or unreadable file is left to the backbone loader.
    """
    backbone = preset.backbone
    defaults = {TRANSFORMER: backbone.transformer, VAE: backbone.vae, TEXT_ENCODER: backbone.text_encoder}
    configs = {}
    for part, expected in defaults.items():
        path = folder / part / "config.json"
        try:
            config = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if not isinstance(config, dict):
            raise UserError(f"{path} must hold a JSON object, not {type(config).__name__}")
        for key, default in expected.items():
            value = config.get(key)
            if value is not None and default is not None:
                checked_value(value, _hint_of(default), f"{path}: {key}")
        configs[part] = config
    _check_preset_shapes(configs, preset, where, str(folder))


def _hint_of(default: Any) -> Any:
    """The type a diffusers config value must have, from the preset's value for it."""
    return tuple[Any, ...] if isinstance(default, (list, tuple)) else type(default)


def _check_preset_shapes(configs: dict[str, dict[str, Any]], preset: Preset, where: Path, what: str) -> None:
    """Refuse a backbone whose shape-setting config values are not those of ``preset`` (the index's claim)."""
    expected = {TRANSFORMER: preset.backbone.transformer, VAE: preset.backbone.vae}
    for part, keys in PRESET_SHAPE_KEYS.items():
        config = configs.get(part)
        if config is None:
            continue
        for key in keys:
            if key not in config or key not in expected[part]:
                continue
            value, wanted = config[key], expected[part][key]
            if _plain(value) != _plain(wanted):
                raise UserError(
                    f"{where} names preset {preset.name}, but {what} is not a {preset.name} backbone: its {part} has "
                    f"{key} = {json.dumps(_plain(value))}, preset {preset.name} has {json.dumps(_plain(wanted))}"
                )


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


def _read_index(directory: Path) -> dict[str, Any]:
    path = directory / INDEX_NAME
    if not directory.is_dir():
        raise UserError(f"model folder {directory} does not exist")
    if not path.is_file():
        raise UserError(f"{directory} is not a LongAnimation model folder: {INDEX_NAME} is missing")
    try:
        index = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"cannot read {path}: {error}") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise UserError(f"{path} is not a LongAnimation model index")
    if index.get("version") != FORMAT_VERSION:
        raise UserError(f"{path} has format version {index.get('version')}; this code reads {FORMAT_VERSION}")
    missing = [key for key in ("preset", "segment", "backbone") if key not in index]
    if missing:
        raise UserError(f"{path} lacks {', '.join(missing)}")
    if index["preset"] not in PRESET_NAMES:
        shown = json.dumps(index["preset"])[:60]
        raise UserError(f"{path}: preset must be one of {', '.join(PRESET_NAMES)}, got {shown}")
    backbone = index["backbone"]
    if backbone is not None and (not isinstance(backbone, str) or not backbone.strip()):
        shown = json.dumps(backbone)[:60]
        raise UserError(f"{path}: backbone must be the name of a folder inside {directory}, or null; got {shown}")
    index["segment"] = build_dataclass(SegmentDefaults, index["segment"], where=f"{path}: segment")
    digests = index.get(DIGESTS)
    if digests is not None and not (
        isinstance(digests, dict) and all(_is_digest_entry(name, value) for name, value in digests.items())
    ):
        raise UserError(f"{path}: {DIGESTS} must map weights files inside the folder to 64-digit hex sha256 digests")
    index[DIGESTS] = digests
    return index


def _is_digest_entry(name: Any, value: Any) -> bool:
    """A relative path inside the folder mapped to a lower-case hex sha256."""
    if not isinstance(name, str) or not isinstance(value, str):
        return False
    parts = Path(name).parts
    inside = bool(parts) and not Path(name).is_absolute() and ".." not in parts
    return inside and len(value) == 64 and all(char in "0123456789abcdef" for char in value)
