"""Training configuration: :class:`TrainConfig` and its YAML loader.

One YAML file describes one run of one stage (``configs/train/*.yaml``).
Every key must be a field of these dataclasses: an unknown or mistyped key,
a missing file or a bad value is a :class:`~longanimation.errors.UserError`
with one line naming the key. Stage names follow the chain in which the
tiny model is grown (``scripts/train_tiny.sh`` runs some stages twice: on
crops, then at full size; and ``vae`` once more at the end, decoder only)::

    vae -> base -> memory-model -> sketchdit -> memory -> reward -> vae (decoder)

``sketchdit``, ``memory`` and ``reward`` are the paper's three stages (sec.
4.1); ``vae``, ``base`` and ``memory-model`` train the parts the paper takes
pretrained (the CogVideoX VAE and transformer, Video-XL) and exist for the
tiny preset only.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from ..data.clips import WEIGHTED_OBJECTS
from ..errors import UserError
from ..typed_config import build_dataclass

MIXED_PRECISION = ("no", "bf16", "fp16")
LR_SCHEDULES = ("constant", "cosine")
DATA_SOURCES = ("toon", "folder")


@dataclasses.dataclass
class ModelConfig:
    """Where the model comes from: a model folder (``init_from``) or a random-initialised ``preset``.

    ``backbone`` is a CogVideoX folder: it supplies the backbone of a model
    folder saved without one, or, with ``preset``, starts the paper's stage 1
    from the released CogVideoX weights (SketchDiT copied from its first
    blocks); ``memory_model`` is then a converted memory-model folder.
    """

    init_from: str | None = None
    preset: str | None = None
    backbone: str | None = None
    memory_model: str | None = None
    seed: int = 0  # random initialisation of the preset's parts
    save_backbone: bool = True  # write backbone/ into the output model folder


@dataclasses.dataclass
class DataConfig:
    """Training clips (:mod:`longanimation.data.clips`): synthetic toon worlds or a folder of real clips."""

    source: str = "toon"
    root: str | None = None  # folder source: the clip tree
    captions: str | None = None  # folder source: CSV/parquet with path, caption
    default_prompt: str = "an animation clip"
    world_seeds: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7)
    world_frames: int = 240
    num_clips: int = 10_000  # dataset length (toon: virtual; folder: cycles over the clips)
    sample_seed: int = 0
    segment_frames: int = 17
    history_frames: int = 32
    history_stride: int = 1
    max_reference_distance: int = 400
    min_history_frames: int = 0
    min_clip_frames: int = 91
    height: int = 128
    width: int = 128
    crop_height: int = 0  # random crop of every clip (0: none)
    crop_width: int = 0
    shuffle: bool = True
    # toon source: which objects the object-weighted eq. 1 weights. "all": every character and prop;
    # "memory": those the target shows and the history shows but the reference does not (only the
    # memory can carry their colors), with clips redrawn until their target has one.
    weighted_objects: str = "all"


@dataclasses.dataclass
class OptimizerConfig:
    """AdamW and its learning-rate schedule (paper: lr 1e-5)."""

    lr: float = 1e-5
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.01
    eps: float = 1e-8
    max_grad_norm: float = 1.0  # 0 turns clipping off
    warmup_steps: int = 0
    schedule: str = "constant"  # or cosine (to 0 at max_steps)


@dataclasses.dataclass
class DiffusionConfig:
    """Timesteps of eq. 1 (``base``, ``sketchdit`` and ``memory`` stages): uniform over ``[min_timestep, max_timestep)``.

    The default is the paper's full range. Narrowing it to the top of the range fine-tunes a model
    for few-step sampling: with zero-terminal-SNR betas, ``t = T - 1`` is pure noise and the
    v-prediction there is ``-z_0``, so a one-step sampler uses only what the model learned near it.
    """

    min_timestep: int = 0
    max_timestep: int | None = None  # None: the scheduler's num_train_timesteps
    # sketchdit/memory stages on toon worlds: weight of character/prop pixels in eq. 1 (1: unweighted)
    object_loss_weight: float = 1.0


@dataclasses.dataclass
class VAEStageConfig:
    """``vae`` stage loss: ``l1 |x - x'| + mse (x - x')^2 + kl KL(q(z|x) || N(0, I))``, each a mean."""

    l1_weight: float = 1.0
    mse_weight: float = 1.0
    kl_weight: float = 1e-6
    # At the start of the run, move every causal temporal kernel onto its current-frame tap
    # (2D -> 3D inflation): a VAE trained on single frames then codes each frame of a clip alone.
    inflate_time_kernels: bool = False
    # Decoder fine-tuning for the diffusion's outputs: the encoder (so the latent space the
    # diffusion stages learned) stays frozen, and the decoder reads z + s * n with s drawn
    # uniformly from [0, latent_noise] per clip, in the scaled latent units the diffusion sees.
    decoder_only: bool = False
    latent_noise: float = 0.0


@dataclasses.dataclass
class MemoryModelStageConfig:
    """``memory-model`` stage: a temporary head reads each chunk's summary tokens' KV and redraws its colors."""

    thumbnail_size: int = 4  # the chunk's mean frame, area-downsampled to this square
    head_width: int = 128


@dataclasses.dataclass
class SketchDiTStageConfig:
    """``sketchdit`` stage (stage 1)."""

    init_from_backbone: bool = True  # re-copy the backbone's first L blocks, zero output (sec. 3.2.1)
    # Also train the backbone transformer, jointly with SketchDiT. The paper keeps its pretrained
    # CogVideoX frozen; the tiny preset's backbone is ours and never saw line art in stage `base`.
    train_backbone: bool = False


@dataclasses.dataclass
class MemoryInputConfig:
    """How stages ``memory`` and ``reward`` stream a clip's history into the memory model."""

    append_frames: int | None = None  # frames per append; default: segment frames - the model's overlap


@dataclasses.dataclass
class RewardStageConfig:
    """``reward`` stage (stage 3, eq. 2 + eq. 5)."""

    samples_per_clip: int = 4  # K samples of one clip share a baseline (advantages normalised over them)
    num_inference_steps: int = 10
    eta: float = 1.0  # DDIM stochasticity of the sampler (1: DDPM variance)
    guidance_scale: float = 1.0  # classifier-free guidance while sampling (1: off)
    clip_range: float = 1e-4


@dataclasses.dataclass
class TrainConfig:
    """One training run of one stage."""

    stage: str | None = None  # may be given on the command line instead
    output: str | None = None  # may be given on the command line instead
    seed: int = 0
    max_steps: int = 1000
    batch_size: int = 1  # clips per process per micro-step
    gradient_accumulation_steps: int = 1
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False
    cpu: bool = False  # force CPU even when a GPU is visible
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    log_every: int = 1
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    memory: MemoryInputConfig = dataclasses.field(default_factory=MemoryInputConfig)
    diffusion: DiffusionConfig = dataclasses.field(default_factory=DiffusionConfig)
    vae: VAEStageConfig = dataclasses.field(default_factory=VAEStageConfig)
    memory_model: MemoryModelStageConfig = dataclasses.field(default_factory=MemoryModelStageConfig)
    sketchdit: SketchDiTStageConfig = dataclasses.field(default_factory=SketchDiTStageConfig)
    reward: RewardStageConfig = dataclasses.field(default_factory=RewardStageConfig)

    def validate(self) -> TrainConfig:
        """Check values that types cannot express; returns ``self``."""
        from .stages import STAGES  # the stage classes import this module

        problems = []
        if self.stage is None:
            problems.append(f"no stage: set stage in the config or pass --stage ({', '.join(STAGES)})")
        elif self.stage not in STAGES:
            problems.append(f"unknown stage {self.stage!r}; choose one of {', '.join(STAGES)}")
        if not self.output:
            problems.append("no output folder: set output in the config or pass --output")
        model = self.model
        if (model.init_from is None) == (model.preset is None):
            problems.append("model: give exactly one of init_from (a model folder) or preset (random init)")
        if model.memory_model is not None and model.preset is None:
            problems.append("model.memory_model goes with model.preset (it replaces the preset's memory model)")
        for name in ("max_steps", "batch_size", "gradient_accumulation_steps", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1")
        if self.keep_checkpoints < 1:
            problems.append("keep_checkpoints must be at least 1")
        if self.mixed_precision not in MIXED_PRECISION:
            problems.append(f"mixed_precision must be one of {', '.join(MIXED_PRECISION)}")
        optimizer = self.optimizer
        if optimizer.lr <= 0 or optimizer.schedule not in LR_SCHEDULES or optimizer.warmup_steps < 0:
            problems.append(f"optimizer: lr > 0, warmup_steps >= 0 and schedule in {', '.join(LR_SCHEDULES)}")
        data = self.data
        if data.source not in DATA_SOURCES:
            problems.append(f"data.source must be one of {', '.join(DATA_SOURCES)}")
        if data.source == "folder" and not data.root:
            problems.append("data.root is required when data.source is folder")
        if data.source == "toon" and not data.world_seeds:
            problems.append("data.world_seeds needs at least one seed")
        if data.segment_frames < 1:
            problems.append(f"data.segment_frames must be at least 1, got {data.segment_frames}")
        if min(data.height, data.width) < 1 or min(data.crop_height, data.crop_width) < 0:
            problems.append("data.height and data.width must be positive, crop sizes >= 0")
        if data.source == "toon" and data.world_frames < data.segment_frames + data.min_history_frames:
            problems.append("data.world_frames must hold segment_frames + min_history_frames")
        if data.num_clips < 1:
            problems.append("data.num_clips must be at least 1")
        if data.weighted_objects not in WEIGHTED_OBJECTS:
            problems.append(f"data.weighted_objects must be one of {', '.join(WEIGHTED_OBJECTS)}")
        if data.weighted_objects != "all" and data.source != "toon":
            problems.append("data.weighted_objects needs toon worlds (their region maps)")
        if self.memory.append_frames is not None and self.memory.append_frames < 1:
            problems.append("memory.append_frames must be at least 1")
        diffusion = self.diffusion
        if diffusion.min_timestep < 0 or (
            diffusion.max_timestep is not None and diffusion.max_timestep <= diffusion.min_timestep
        ):
            problems.append("diffusion: 0 <= min_timestep < max_timestep")
        if diffusion.object_loss_weight < 1:
            problems.append("diffusion.object_loss_weight must be at least 1 (1: unweighted)")
        if diffusion.object_loss_weight != 1 and (data.source != "toon" or self.stage not in ("sketchdit", "memory")):
            problems.append("diffusion.object_loss_weight needs toon worlds (their region maps) and stage sketchdit or memory")
        if self.vae.latent_noise < 0:
            problems.append("vae.latent_noise must be >= 0")
        reward = self.reward
        if reward.samples_per_clip < 2:
            problems.append("reward.samples_per_clip must be at least 2 (advantages are normalised over them)")
        if reward.num_inference_steps < 2 or not 0 < reward.eta <= 1 or reward.clip_range <= 0:
            problems.append("reward: num_inference_steps >= 2, 0 < eta <= 1 and clip_range > 0")
        if self.memory_model.thumbnail_size < 1 or self.memory_model.head_width < 1:
            problems.append("memory_model: thumbnail_size and head_width must be at least 1")
        if problems:
            raise UserError("bad training config: " + "; ".join(problems))
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-safe data (tuples become lists)."""
        return _plain(dataclasses.asdict(self))


def check_against_model(data: DataConfig, temporal_compression: int, spatial_multiple: int) -> None:
    """Frame count and sizes the model's VAE and patching accept (``tk + 1`` frames, multiples of ``spatial_multiple``)."""
    problems = []
    if (data.segment_frames - 1) % temporal_compression:
        problems.append(
            f"data.segment_frames must be {temporal_compression}k + 1 for this model's VAE, got {data.segment_frames}"
        )
    sizes = {"height": data.crop_height or data.height, "width": data.crop_width or data.width}
    for name, size in sizes.items():
        if size % spatial_multiple:
            problems.append(
                f"data.{name} (after cropping) must be a multiple of {spatial_multiple} (VAE x patch), got {size}"
            )
    if problems:
        raise UserError("bad training config: " + "; ".join(problems))


def load_config(path: str | Path, **overrides: Any) -> TrainConfig:
    """Read a YAML config; ``overrides`` (e.g. ``stage=``, ``output=``) replace top-level keys when not None."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        message = " ".join(str(error).split())
        raise UserError(f"cannot read config {path}: {message}") from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise UserError(f"config {path} must be a mapping of keys to values")
    config = build_dataclass(TrainConfig, raw, f"{path}")
    stage = overrides.pop("stage", None)
    if stage is not None and config.stage is not None and stage != config.stage:
        raise UserError(f"--stage {stage} contradicts stage: {config.stage} in {path}")
    changes = {key: value for key, value in {"stage": stage, **overrides}.items() if value is not None}
    return dataclasses.replace(config, **changes).validate()


def config_from_dict(raw: dict[str, Any]) -> TrainConfig:
    """A config from :meth:`TrainConfig.to_dict` data (e.g. a checkpoint's ``config.yaml``)."""
    return build_dataclass(TrainConfig, raw, "config")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
