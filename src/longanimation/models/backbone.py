"""The frozen CogVideoX-1.5 image-to-video backbone (paper sec. 3.1).

:class:`CogVideoXBackbone` bundles the five parts of a diffusers CogVideoX I2V
snapshot -- ``transformer/`` (:class:`CogVideoXTransformer3DModel`), ``vae/``
(:class:`AutoencoderKLCogVideoX`), ``text_encoder/`` (T5 encoder),
``tokenizer/`` and ``scheduler/`` (:class:`CogVideoXDPMScheduler`,
v-prediction) -- and the tensor plumbing around them. It is frozen in every
training stage: no parameter requires grad and ``train()`` keeps it in eval mode.

Tensor layouts (the ones the diffusers I2V pipeline uses):

* pixels: ``(B, 3, F, H, W)`` in ``[-1, 1]``, ``F = 4k + 1`` (the VAE's layout);
* latents: ``(B, T, 16, H/8, W/8)`` with ``T = (F - 1) / 4 + 1`` (the
  transformer's layout), scaled by the VAE scaling factor;
* text: ``(B, max_text_seq_length, text_dim)`` (226 x 4096 for CogVideoX).

CogVideoX 1.5 patchifies ``patch_size_t = 2`` latent frames together, so the
transformer needs a latent frame count divisible by 2. The official I2V
pipeline handles an odd count (81 frames -> 21 latents) by generating
``pad = (-T) % patch_size_t`` extra latent frames *in front* (22 in total),
putting the reference image latent at frame 0 of that padded sequence, and
dropping the first ``pad`` latent frames before decoding
(:func:`latent_frame_padding`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKLCogVideoX, CogVideoXDPMScheduler, CogVideoXTransformer3DModel
from diffusers.models.embeddings import get_3d_rotary_pos_embed
from torch import nn
from transformers import AutoTokenizer, T5Config, T5EncoderModel

from ..atomic import atomic_dir
from ..errors import UserError
from .checkpoint import PICKLE_SUFFIXES, is_pickle_file, refuse_pickle

TRANSFORMER, VAE, TEXT_ENCODER, TOKENIZER, SCHEDULER = "transformer", "vae", "text_encoder", "tokenizer", "scheduler"
SUBFOLDERS = (TRANSFORMER, VAE, TEXT_ENCODER, TOKENIZER, SCHEDULER)
WEIGHT_SUBFOLDERS = (TRANSFORMER, VAE, TEXT_ENCODER)

# The official CogVideoX-1.5 I2V pipeline feeds this constant to the "ofs" embedding.
OFS_VALUE = 2.0


@dataclasses.dataclass
class BackboneConfig:
    """Constructor arguments of the four backbone parts (each library's own config keys)."""

    transformer: dict[str, Any]  # CogVideoXTransformer3DModel(**transformer)
    vae: dict[str, Any]  # AutoencoderKLCogVideoX(**vae)
    text_encoder: dict[str, Any]  # T5Config(**text_encoder)
    scheduler: dict[str, Any]  # CogVideoXDPMScheduler(**scheduler)


def latent_frame_padding(num_latent_frames: int, patch_size_t: int) -> int:
    """Latent frames the official I2V pipeline adds in front so the count divides ``patch_size_t``."""
    return (-num_latent_frames) % patch_size_t


def rotary_embeddings(
    transformer_config: Mapping[str, Any],
    num_latent_frames: int,
    latent_height: int,
    latent_width: int,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """3D RoPE ``(cos, sin)`` for a ``(T, h, w)`` latent grid, as the CogVideoX-1.5 pipelines build it.

    CogVideoX 1.5 uses the "slice" grid: integer positions ``0..n-1`` on each
    axis, so the result does not depend on the configured sample size.
    """
    p, p_t = transformer_config["patch_size"], transformer_config["patch_size_t"]
    grid = (latent_height // p, latent_width // p)
    return get_3d_rotary_pos_embed(
        embed_dim=transformer_config["attention_head_dim"],
        crops_coords=None,
        grid_size=grid,
        temporal_size=(num_latent_frames + p_t - 1) // p_t,
        grid_type="slice",
        max_size=grid,
        device=device,
    )


def check_i2v_layout(transformer_config: Mapping[str, Any]) -> None:
    """Refuse transformer configs that are not the CogVideoX-1.5 image-to-video layout."""
    problems = []
    if not transformer_config.get("patch_size_t"):
        problems.append("patch_size_t is not set (CogVideoX 1.0 layout)")
    if not transformer_config.get("use_rotary_positional_embeddings"):
        problems.append("rotary positional embeddings are off")
    out_channels = transformer_config.get("out_channels") or transformer_config.get("in_channels")
    if transformer_config.get("in_channels") != 2 * out_channels:
        problems.append(
            f"in_channels={transformer_config.get('in_channels')} is not 2 x out_channels={out_channels} "
            "(noisy latent + image latent)"
        )
    if problems:
        raise UserError("not a CogVideoX-1.5 image-to-video transformer: " + "; ".join(problems))


class CogVideoXBackbone(nn.Module):
    """Frozen CogVideoX-1.5 I2V: transformer, VAE, T5 text encoder, tokenizer and scheduler.

    ``tokenizer`` may be ``None`` (e.g. the paper preset built on the meta
    device, where no T5 tokenizer files exist); :meth:`encode_prompt` then refuses.
    """

    def __init__(
        self,
        transformer: CogVideoXTransformer3DModel,
        vae: AutoencoderKLCogVideoX,
        text_encoder: T5EncoderModel,
        tokenizer: Any | None,
        scheduler: CogVideoXDPMScheduler,
    ) -> None:
        super().__init__()
        check_i2v_layout(transformer.config)
        self.transformer = transformer
        self.vae = vae
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.scheduler = scheduler
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> CogVideoXBackbone:
        """The backbone is frozen: it always stays in eval mode."""
        return super().train(False)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_config(cls, config: BackboneConfig, tokenizer: Any | None = None) -> CogVideoXBackbone:
        """Random-initialised backbone; honours a ``torch.device(...)`` context (e.g. "meta")."""
        return cls(
            transformer=CogVideoXTransformer3DModel(**config.transformer),
            vae=AutoencoderKLCogVideoX(**config.vae),
            text_encoder=T5EncoderModel(T5Config(**config.text_encoder)),
            tokenizer=tokenizer,
            scheduler=CogVideoXDPMScheduler(**config.scheduler),
        )

    @classmethod
    def from_pretrained(
        cls,
        directory: str | os.PathLike,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> CogVideoXBackbone:
        """Load a local diffusers CogVideoX-1.5 I2V folder (safetensors only, nothing downloaded)."""
        directory = Path(directory)
        check_snapshot(directory)
        transformer = _load_weights(CogVideoXTransformer3DModel, directory / TRANSFORMER, torch_dtype=dtype)
        vae = _load_weights(AutoencoderKLCogVideoX, directory / VAE, torch_dtype=dtype)
        # transformers reports mis-shaped tensors by name only when told to ignore them; we then refuse.
        text_encoder = _load_weights(
            T5EncoderModel, directory / TEXT_ENCODER, dtype=dtype, ignore_mismatched_sizes=True
        )
        tokenizer = _load(AutoTokenizer.from_pretrained, directory / TOKENIZER, local_files_only=True)
        scheduler = _load(CogVideoXDPMScheduler.from_pretrained, directory / SCHEDULER)
        backbone = cls(transformer, vae, text_encoder, tokenizer, scheduler)
        return backbone.to(device) if device is not None else backbone

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write the diffusers I2V layout (five subfolders + ``model_index.json``) atomically."""
        if self.tokenizer is None:
            raise UserError("cannot save a backbone without a tokenizer")
        with atomic_dir(directory) as tmp:
            self.transformer.save_pretrained(tmp / TRANSFORMER, safe_serialization=True)
            self.vae.save_pretrained(tmp / VAE, safe_serialization=True)
            self.text_encoder.save_pretrained(tmp / TEXT_ENCODER, safe_serialization=True)
            self.tokenizer.save_pretrained(tmp / TOKENIZER)
            self.scheduler.save_pretrained(tmp / SCHEDULER)
            index = {
                "_class_name": "CogVideoXImageToVideoPipeline",
                TOKENIZER: ["transformers", type(self.tokenizer).__name__],
                TEXT_ENCODER: ["transformers", type(self.text_encoder).__name__],
                VAE: ["diffusers", type(self.vae).__name__],
                TRANSFORMER: ["diffusers", type(self.transformer).__name__],
                SCHEDULER: ["diffusers", type(self.scheduler).__name__],
            }
            (tmp / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")

    # ------------------------------------------------------------------ shapes
    @property
    def max_text_length(self) -> int:
        """Prompts are padded/truncated to this many tokens (226 for CogVideoX)."""
        return self.transformer.config.max_text_seq_length

    @property
    def patch_size_t(self) -> int:
        return self.transformer.config.patch_size_t

    @property
    def latent_channels(self) -> int:
        return self.transformer.config.out_channels

    @property
    def spatial_compression(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def temporal_compression(self) -> int:
        return int(self.vae.config.temporal_compression_ratio)

    def num_latent_frames(self, num_frames: int) -> int:
        """Latent frames of an ``F = 4k + 1`` frame clip: ``(F - 1) / 4 + 1``."""
        if (num_frames - 1) % self.temporal_compression:
            raise ValueError(f"{num_frames} frames: the VAE needs {self.temporal_compression}k + 1 frames")
        return (num_frames - 1) // self.temporal_compression + 1

    def ofs(self, device: torch.device | str | None = None) -> torch.Tensor | None:
        """The constant "ofs" input of CogVideoX-1.5 I2V (``None`` if the transformer has no ofs embedding)."""
        if not self.transformer.config.ofs_embed_dim:
            return None
        return torch.full((1,), OFS_VALUE, device=device)

    # ------------------------------------------------------------------ VAE
    @torch.no_grad()
    def encode_video(self, video: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Pixels ``(B, 3, F, H, W)`` in [-1, 1] -> scaled latents ``(B, T, 16, H/8, W/8)``.

        Uses the posterior mean unless ``generator`` is given, then samples from
        it (as diffusers' training scripts do). Latents are multiplied by the VAE
        scaling factor: the scale of the denoised (and sketch) latents.
        """
        latents = self._encode(video, generator)
        return latents * self.vae.config.scaling_factor

    @torch.no_grad()
    def encode_reference_image(self, image: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reference image ``(B, 3, H, W)`` in [-1, 1] -> image latent ``(B, 1, 16, H/8, W/8)``.

        Scaled as the I2V pipeline scales its conditioning latent: by the
        scaling factor, or by its inverse when the VAE config has
        ``invert_scale_latents`` (CogVideoX 1.5).
        """
        latents = self._encode(image.unsqueeze(2), generator)
        factor = self.vae.config.scaling_factor
        return latents / factor if self.vae.config.invert_scale_latents else latents * factor

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents ``(B, T, 16, h, w)`` -> pixels ``(B, 3, 4(T - 1) + 1, 8h, 8w)`` in [-1, 1] (unclamped)."""
        latents = latents.permute(0, 2, 1, 3, 4) / self.vae.config.scaling_factor
        return self.vae.decode(latents.to(self.vae.dtype)).sample

    def _encode(self, pixels: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        if pixels.ndim != 5 or pixels.shape[1] != 3:
            raise ValueError(f"expected pixels (B, 3, F, H, W), got {tuple(pixels.shape)}")
        self.num_latent_frames(pixels.shape[2])
        posterior = self.vae.encode(pixels.to(self.vae.dtype)).latent_dist
        latents = posterior.mode() if generator is None else posterior.sample(generator)
        return latents.permute(0, 2, 1, 3, 4)

    @staticmethod
    def image_latents_padded(ref_latent: torch.Tensor, num_latent_frames: int) -> torch.Tensor:
        """``(B, 1, C, h, w)`` reference latent -> ``(B, T, C, h, w)``: itself at frame 0, zeros elsewhere."""
        padding = ref_latent.new_zeros(ref_latent.shape[0], num_latent_frames - 1, *ref_latent.shape[2:])
        return torch.cat([ref_latent, padding], dim=1)

    # ------------------------------------------------------------------ text
    @torch.no_grad()
    def encode_prompt(self, prompts: Sequence[str]) -> torch.Tensor:
        """Prompts -> T5 embeddings ``(B, max_text_length, text_dim)`` (padded to max length, no mask)."""
        if self.tokenizer is None:
            raise UserError("this backbone has no tokenizer; load one with the CogVideoX snapshot")
        tokens = self.tokenizer(
            list(prompts),
            padding="max_length",
            max_length=self.max_text_length,
            truncation=True,
            add_special_tokens=True,
            return_tensors="pt",
        )
        device = self.text_encoder.device
        return self.text_encoder(tokens.input_ids.to(device))[0]


def check_snapshot(folder: Path) -> None:
    """``folder`` is a diffusers CogVideoX snapshot: every part's subfolder, weights in safetensors."""
    if not folder.is_dir():
        raise UserError(f"CogVideoX folder {folder} does not exist")
    for name in SUBFOLDERS:
        if not (folder / name).is_dir():
            raise UserError(f"{folder} is not a CogVideoX snapshot: subfolder {name}/ is missing")
    for name in WEIGHT_SUBFOLDERS:
        require_safetensors(folder / name)


def require_safetensors(folder: Path) -> None:
    """Refuse a weights folder without safetensors (naming a pickle checkpoint if there is one)."""
    if any(folder.glob("*.safetensors")):
        return
    if any(path.suffix in PICKLE_SUFFIXES and is_pickle_file(path) for path in folder.iterdir()):
        refuse_pickle(folder)
    raise UserError(f"{folder} holds no .safetensors weights")


def _load_weights(model_class: Any, path: Path, **kwargs: Any) -> Any:
    """A diffusers/transformers model from safetensors, refusing missing or mis-shaped tensors by name."""
    model, report = _load(
        model_class.from_pretrained,
        path,
        local_files_only=True,
        use_safetensors=True,
        output_loading_info=True,
        **kwargs,
    )
    problems = []
    for label, key in (("missing", "missing_keys"), ("mis-shaped", "mismatched_keys")):
        names = sorted(str(entry[0] if isinstance(entry, tuple) else entry) for entry in report.get(key, ()))
        if names:
            shown = ", ".join(names[:5]) + (f" (+{len(names) - 5} more)" if len(names) > 5 else "")
            problems.append(f"{len(names)} {label}: {shown}")
    if problems:
        raise UserError(f"{path} does not match its config.json: " + "; ".join(problems))
    return model


def _load(loader: Any, path: Path, **kwargs: Any) -> Any:
    """Call a library ``from_pretrained`` and turn its errors into one-line :class:`UserError`."""
    try:
        return loader(path, **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as error:
        message = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        if len(message) > 300:
            message = message[:300] + " ..."
        raise UserError(f"cannot load {path}: {type(error).__name__}: {message}") from None
