"""The official LongAnimation release as a model folder of ours (``longanimation convert-official``).

The release (github CN-makers/LongAnimation, inference only) ships three parts
next to a diffusers CogVideoX1.5-5B-I2V folder; each becomes one of our parts
in the release's layout (:func:`~.presets.official`), with weights unchanged:

* ``control_module.safetensors`` -- SketchDiT (sec. 3.2.1), their
  ``Control3DModel``: the backbone's patch/time/ofs embeddings and L CogVideoX
  blocks under the backbone's names, then ``zero_conv`` (no bias). Their
  backbone adds ``0.5 * S`` after the 0-based blocks ``i % 2 == 0``: eq. 3
  with other indices, ``SketchDiTConfig(inject_start=0, output_bias=False)``.
* ``glm_module.safetensors`` -- DGLM (eq. 4), ``S' = S + DGLM(G, L, S)``:
  ``layers.{m}.0`` the cross-attention (``norm1`` on the projected memory keys
  and values, ``norm2`` on S, bias-free ``to_q/k/v/out``), ``layers.{m}.1`` the
  FFN (LayerNorm, Linear, GELU, Linear, no biases), ``key_mapping_{m}`` /
  ``value_mapping_{m}`` the projectors (512 -> 1024 -> 2048 -> D) and
  ``proj_out`` a raw matrix applied as ``h @ P`` (stored transposed here).
* a Video-XL folder (LLaVA-Qwen2-7B + CLIP ViT-L/14-336 with "beacon" summary
  tokens, safetensors shards, ``config.json``, tokenizer): the memory model
  with the beacons' own q/k/v projections, the release's windows and ratio, and
  the chat prompt the release wraps around the video.

Every tensor of ours is named by a rule giving its name (and layout) in their
files; a tensor of theirs that no rule names, one that is missing or one of
the wrong shape is a one-line :class:`~longanimation.errors.UserError`.
Nothing is unpickled. The backbone folder is linked into the output (or
copied with ``copy_backbone``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..atomic import atomic_dir
from ..errors import UserError
from .backbone import TRANSFORMER, VAE, check_i2v_layout, check_snapshot, require_safetensors
from .checkpoint import CONFIG_NAME, WEIGHTS_NAME, file_sha256, one_line, read_json, refuse_pickle, write_config
from .dglm import GlobalLocalMemory
from .longanimation_model import (
    BACKBONE,
    DGLM,
    DIGESTS,
    FORMAT,
    FORMAT_VERSION,
    INDEX_NAME,
    MEMORY_MODEL,
    PRESET_SHAPE_KEYS,
    SKETCH_DIT,
    weights_digests,
)
from .memory_model import LongVideoMemoryModel, MemoryModelConfig
from .presets import PRESET_NAMES, Preset, get_preset, official
from .sketch_dit import SketchDiT

# The prompt the release gives Video-XL (infernece_i2v_autoreg_glm.py); <image> stands for the video tokens.
VIDEO_XL_PROMPT = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>\n"
    "Can you describe the scene and color in anime?<|im_end|>\n<|im_start|>assistant\n"
)
IMAGE_PLACEHOLDER = "<image>"


@dataclasses.dataclass(frozen=True)
class Rule:
    """Where one of our tensors lives in their files.

    ``ours`` is a regex over our state-dict names (full match), ``theirs`` the
    ``re.Match.expand`` template of their name. ``layout``: ``same``;
    ``transposed`` (their matrix is applied as ``h @ P``, ours is ``W = P^T``);
    ``row`` (their one-row embedding table, our vector).
    """

    ours: str
    theirs: str
    layout: str = "same"

    def their_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if self.layout == "transposed":
            return shape[::-1]
        return (1, *shape) if self.layout == "row" else shape

    def to_ours(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.layout == "transposed":
            return tensor.t().contiguous()
        return tensor.reshape(tensor.shape[1:]) if self.layout == "row" else tensor


@dataclasses.dataclass(frozen=True)
class Part:
    """One of our parts: its module class, its rules and their tensors it drops on purpose (regex, why)."""

    label: str
    module: type
    rules: tuple[Rule, ...]
    dropped: tuple[tuple[str, str], ...] = ()


SKETCH_DIT_PART = Part(
    "SketchDiT (control_module)",
    SketchDiT,
    (
        Rule(r"out_projection\.weight", "zero_conv.weight"),
        Rule(r"((?:patch_embed|time_embedding|ofs_embedding|transformer_blocks)\..+)", r"\1"),
    ),
)

DGLM_PART = Part(
    "DGLM (glm_module)",
    GlobalLocalMemory,
    (
        Rule(r"proj_out\.weight", "proj_out", "transposed"),
        Rule(r"blocks\.(\d+)\.memory_norm\.(weight|bias)", r"layers.\1.0.norm1.\2"),
        Rule(r"blocks\.(\d+)\.norm\.(weight|bias)", r"layers.\1.0.norm2.\2"),
        Rule(r"blocks\.(\d+)\.(to_q|to_k|to_v|to_out)\.weight", r"layers.\1.0.\2.weight"),
        Rule(r"blocks\.(\d+)\.ffn_norm\.(weight|bias)", r"layers.\1.1.0.\2"),
        Rule(r"blocks\.(\d+)\.ffn\.0\.weight", r"layers.\1.1.1.weight"),
        Rule(r"blocks\.(\d+)\.ffn\.2\.weight", r"layers.\1.1.3.weight"),
        Rule(r"key_projectors\.(\d+)\.(\d+)\.(weight|bias)", r"key_mapping_\1.\2.\3"),
        Rule(r"value_projectors\.(\d+)\.(\d+)\.(weight|bias)", r"value_mapping_\1.\2.\3"),
    ),
)

MEMORY_PART = Part(
    "memory model (Video-XL)",
    LongVideoMemoryModel,
    (
        Rule(
            r"summary_projections\.(\d+)\.(q|k|v)_proj\.(weight|bias)",
            r"model.layers.\1.self_attn.beacon_\2_proj.\3",
        ),
        Rule(r"summary_embedding", "model.beacon_embed_tokens.weight", "row"),
        Rule(r"lm\.(.+)", r"model.\1"),
        Rule(r"projector\.(.+)", r"model.mm_projector.\1"),
        # transformers 5 drops the checkpoints' `vision_model.` level from CLIPVisionModel's own names
        Rule(r"vision\.(.+)", r"model.vision_tower.vision_tower.vision_model.\1"),
    ),
    dropped=(
        (r"lm_head\.weight", "the memory never decodes text"),
        (r".+\.position_ids", "a constant index buffer"),
    ),
)


# ---------------------------------------------------------------- inputs


def backbone_preset(folder: Path) -> Preset:
    """The preset whose backbone shapes ``folder`` (a diffusers CogVideoX-1.5 I2V snapshot) has."""
    check_snapshot(folder)
    configs = {part: read_json(folder / part / CONFIG_NAME) for part in PRESET_SHAPE_KEYS}
    check_i2v_layout(configs[TRANSFORMER])
    for name in PRESET_NAMES:
        preset = get_preset(name)
        expected = {TRANSFORMER: preset.backbone.transformer, VAE: preset.backbone.vae}
        if all(
            plain(configs[part].get(key)) == plain(expected[part][key])
            for part, keys in PRESET_SHAPE_KEYS.items()
            for key in keys
        ):
            return preset
    shown = ", ".join(f"{key}={configs[TRANSFORMER].get(key)}" for key in PRESET_SHAPE_KEYS[TRANSFORMER])
    raise UserError(f"{folder} has no preset's shapes (transformer {shown}); expected CogVideoX1.5-5B-I2V")


def video_xl_memory_config(folder: Path, base: MemoryModelConfig) -> MemoryModelConfig:
    """``base`` checked against Video-XL's ``config.json``, with its window and its prompt's token ids.

    Values that shapes cannot show (heads, RoPE, eps, CLIP layer, beacon
    settings) must be those the official layout computes with.
    """
    config = read_json(folder / CONFIG_NAME)
    window = config.get("beacon_window")
    expected: dict[str, Any] = {
        "hidden_size": base.hidden_size,
        "num_hidden_layers": base.num_layers,
        "num_attention_heads": base.num_heads,
        "num_key_value_heads": base.num_kv_heads,
        "intermediate_size": base.intermediate_size,
        "vocab_size": base.vocab_size,
        "rope_theta": base.rope_theta,
        "rms_norm_eps": base.rms_norm_eps,
        "hidden_act": "silu",
        "mm_vision_select_layer": base.vision_feature_layer,
        "mm_projector_type": "mlp2x_gelu",
        "mm_spatial_pool_stride": base.pool_stride,
        "beacon_param": ["q", "k", "v"],  # own q/k/v for beacons; o_proj and MLP shared
        "beacon_pos": "interleave",
        "beacon_attn": "full-coverage",  # plain causal attention over the window, all memory visible
        "beacon_sink_size": 0,
        "beacon_stride": window,
    }
    defaults = {"mm_vision_select_feature": "patch", "mm_spatial_pool_mode": "average", "beacon_accum": True}
    where = folder / CONFIG_NAME
    if not isinstance(window, int) or isinstance(window, bool):
        raise UserError(f"{where}: beacon_window must be an integer, got {json.dumps(window)}")
    for key, wanted in (expected | defaults).items():
        if key not in config and key not in defaults:
            raise UserError(f"{where} lacks {key}: not a Video-XL config")
        value = plain(config.get(key, defaults.get(key)))  # Video-XL reads these with a default
        if value != plain(wanted):
            raise UserError(f"{where}: {key} is {json.dumps(value)}, the official layout needs {json.dumps(wanted)}")
    if window % base.tokens_per_frame:
        raise UserError(f"{where}: beacon_window {window} is not whole frames of {base.tokens_per_frame} tokens")
    prefix, suffix = video_xl_prompt_ids(folder)
    try:
        return dataclasses.replace(
            base, chunk_sizes=(window // base.tokens_per_frame,), prompt_prefix=prefix, prompt_suffix=suffix
        )
    except UserError as error:
        raise UserError(f"{where}: {error}") from None


def video_xl_prompt_ids(folder: Path) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Token ids of the release's prompt before and after the video, tokenized as LLaVA's ``tokenizer_image_token``."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(f"cannot read Video-XL's tokenizer in {folder}: {one_line(error)}") from None
    before, after = (tokenizer(text).input_ids for text in VIDEO_XL_PROMPT.split(IMAGE_PLACEHOLDER))
    bos = tokenizer.bos_token_id
    if bos is not None and before[:1] == [bos]:  # the BOS is kept once, at the very start
        after = after[1:]
    return tuple(before), tuple(after)


def tensor_files(path: Path, what: str) -> list[Path]:
    """The safetensors file(s) behind ``path``: a file, or every ``*.safetensors`` of a folder (shards)."""
    if not path.exists():
        raise UserError(f"{what} {path} does not exist")
    if path.is_file():
        refuse_pickle(path)
        return [path]
    require_safetensors(path)
    return sorted(path.glob("*.safetensors"))


def tensor_shapes(files: list[Path]) -> dict[str, tuple[Path, tuple[int, ...]]]:
    """Every tensor name of ``files`` -> (its file, its shape), read from the headers only."""
    found: dict[str, tuple[Path, tuple[int, ...]]] = {}
    for path in files:
        try:
            with safe_open(str(path), framework="pt") as handle:
                for name in handle.keys():
                    if name in found:
                        raise UserError(f"tensor {name} is in both {found[name][0]} and {path}")
                    found[name] = (path, tuple(handle.get_slice(name).get_shape()))
        except (SafetensorError, OSError, ValueError) as error:
            raise UserError(f"cannot read {path}: not a valid safetensors file ({one_line(error)})") from None
    return found


# ---------------------------------------------------------------- mapping


def convert_part(part: Part, config: Any, files: list[Path], preset: str) -> dict[str, torch.Tensor]:
    """Our state dict of ``part`` from their files: every tensor of ours found, every one of theirs used."""
    with torch.device("meta"):
        expected = part.module(config).state_dict()
    available = tensor_shapes(files)
    source = files[0] if len(files) == 1 else files[0].parent
    plan: dict[str, tuple[str, Rule]] = {}
    for ours, tensor in expected.items():
        rule, match = next((r, m) for r in part.rules if (m := re.fullmatch(r.ours, ours)))
        theirs = match.expand(rule.theirs)
        if theirs not in available:
            raise UserError(f"{source} lacks tensor {theirs} ({part.label} {ours}): not the official {part.label}?")
        shape, wanted = available[theirs][1], rule.their_shape(tuple(tensor.shape))
        if shape != wanted:
            raise UserError(
                f"{source}: tensor {theirs} has shape {list(shape)}, the official {preset} layout needs {list(wanted)}"
            )
        plan[ours] = (theirs, rule)
    used = {theirs for theirs, _ in plan.values()}
    for name in sorted(available):
        if name not in used and not any(re.fullmatch(pattern, name) for pattern, _ in part.dropped):
            raise UserError(f"{source}: tensor {name} is not used by the official {preset} {part.label}")
    return load_planned(plan, available)


def load_planned(plan: dict[str, tuple[str, Rule]], available: dict[str, tuple[Path, Any]]) -> dict[str, torch.Tensor]:
    """Read the planned tensors, one file open at a time, in our layout (their dtype kept)."""
    state: dict[str, torch.Tensor] = {}
    by_file: dict[Path, list[str]] = {}
    for ours, (theirs, _) in plan.items():
        by_file.setdefault(available[theirs][0], []).append(ours)
    for path, names in by_file.items():
        with safe_open(str(path), framework="pt") as handle:
            for ours in names:
                theirs, rule = plan[ours]
                state[ours] = rule.to_ours(handle.get_tensor(theirs))
    return state


# ---------------------------------------------------------------- output


def convert_official(
    cogvideox: Path, control: Path, glm: Path, videoxl: Path, output: Path, *, copy_backbone: bool = False
) -> Preset:
    """Write ``output``: a LongAnimation model folder that runs the release's weights as trained.

    Every input is checked (and every tensor mapped) before anything is written.
    Returns the preset of the folder (``paper`` for CogVideoX1.5-5B-I2V).
    """
    cogvideox, control, glm, videoxl = (Path(path) for path in (cogvideox, control, glm, videoxl))
    preset = official(backbone_preset(cogvideox))
    if not videoxl.is_dir():
        raise UserError(f"Video-XL folder {videoxl} does not exist")
    memory = video_xl_memory_config(videoxl, preset.memory_model)
    parts = {
        SKETCH_DIT: (SKETCH_DIT_PART, preset.sketch_dit, tensor_files(control, "SketchDiT file")),
        DGLM: (DGLM_PART, preset.dglm, tensor_files(glm, "DGLM file")),
        MEMORY_MODEL: (MEMORY_PART, memory, tensor_files(videoxl, "Video-XL folder")),
    }
    states = {name: convert_part(part, config, files, preset.name) for name, (part, config, files) in parts.items()}
    with atomic_dir(output) as tmp:
        for name, (part, config, _) in parts.items():
            (tmp / name).mkdir()
            write_config(tmp / name, config, part.module.__name__)
            save_file(states[name], str(tmp / name / WEIGHTS_NAME), metadata={"format": "pt"})
        if copy_backbone:
            shutil.copytree(cogvideox, tmp / BACKBONE)
            digests = weights_digests(tmp)
        else:  # the snapshot stays where it is: its files are not ours to fingerprint
            os.symlink(cogvideox.resolve(), tmp / BACKBONE, target_is_directory=True)
            digests = {f"{name}/{WEIGHTS_NAME}": file_sha256(tmp / name / WEIGHTS_NAME) for name in parts}
        index = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "preset": preset.name,
            "segment": dataclasses.asdict(preset.segment),
            "backbone": BACKBONE,
            DIGESTS: digests,
        }
        (tmp / INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n")
    return preset


# ---------------------------------------------------------------- helpers


def plain(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


