"""Where the model's parts live during inference: device, dtype, CPU offload, VAE tiling.

The paper's model does not fit a GPU as it is saved: 19.1 B parameters are
76 GB in float32, and the VAE alone needs about 48 GB to decode one 81-frame
1360 x 768 segment in one piece (``longanimation info --estimate``). The
options of :class:`PlacementOptions` make it fit one GPU:

* ``dtype``: the parameters in bf16 (or fp16, GPU only). The sampler's
  latents and the scheduler's math stay float32: the pipeline casts the
  latents to the weights' dtype only for the denoiser call. Buffers keep
  their dtype; RoPE frequencies a lower-precision load rounded are computed
  again in float32 (:func:`restore_rope_frequencies`). ``vae_dtype`` gives the
  VAE a dtype of its own (e.g. fp32 on a CPU, whose bf16 Conv3d is PyTorch's
  slow reference kernel unless it has AVX512-BF16/AMX).
* ``vae_tiling`` / ``vae_slicing``: diffusers' tiled VAE encode and decode
  (``AutoencoderKLCogVideoX.enable_tiling``: tiles of half the VAE's sample
  size, 240 x 360 pixels for the paper VAE, blended where they overlap, so
  the output changes slightly near tile seams) and sliced batches (one video
  at a time; the pipeline encodes and decodes batches of one, so slicing only
  matters to other callers).
* ``offload``, for the four parts the pipeline runs -- the T5 text encoder,
  the denoiser (CogVideoX transformer + SketchDiT + DGLM, one part: they run
  together at every step), the VAE and the memory model:

  - ``none``: the denoiser and the VAE stay on the device. The text encoder
    comes to the device only to encode the prompt (once per shot) and goes
    back to CPU RAM right after; the memory model comes only while it reads
    frames (the keyframes, then each segment's new frames), unless
    ``memory_resident`` keeps it there.
  - ``model``: every part is on the device only while it runs, one part at a
    time (diffusers' ``enable_model_cpu_offload``; an accelerate
    :class:`~accelerate.hooks.ModelHook` on the denoiser, VAE and text
    encoder brings a part in and sends the previous one back to CPU RAM).
  - ``sequential``: accelerate's :func:`~accelerate.cpu_offload` on the
    layer stacks: weights stay in CPU RAM and each layer's come to the device
    for its own forward only (diffusers' ``enable_sequential_cpu_offload``;
    slowest, least memory). Small pieces that code reads the device of stay
    on the device: embeddings, norms, DGLM's output projection, the memory
    model's summary embedding (:data:`STREAMED` lists what is streamed).

On a CPU device every option still runs: offloading to CPU RAM from CPU RAM
moves nothing. Apply a placement once per model (:func:`place`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..errors import UserError

if TYPE_CHECKING:
    from ..models.longanimation_model import LongAnimationModel
    from .long_animation import LongAnimationPipeline

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
OFFLOADS = ("none", "model", "sequential")

# Sequential offload: the submodules whose weights are streamed, per part (dotted paths; each
# element of a ModuleList is streamed on its own). Everything else stays on the device.
STREAMED = {
    "backbone.transformer": ("transformer_blocks",),
    "sketch_dit": ("transformer_blocks",),
    "dglm": ("key_projectors", "value_projectors", "blocks"),
    "backbone.text_encoder": ("encoder.block",),
    "backbone.vae": ("encoder", "decoder"),
    "memory_model": ("vision.encoder.layers", "lm.layers", "lm.embed_tokens", "summary_projections"),
}


@dataclasses.dataclass(frozen=True)
class PlacementOptions:
    """How the model is placed for inference (module docstring); ``None`` fields pick a default."""

    device: str | None = None  # None: "cuda" when a GPU is there, else "cpu"
    dtype: str | None = None  # a key of DTYPES, or None: bf16 on a GPU, fp32 on the CPU
    offload: str = "none"  # one of OFFLOADS
    vae_tiling: bool = False
    vae_slicing: bool = False
    memory_resident: bool = False  # offload none: the memory model stays on the device between segments
    vae_dtype: str | None = None  # a key of DTYPES, or None: the weights' dtype

    def resolved(self) -> PlacementOptions:
        """The options with the defaults filled in; :class:`UserError` for a bad value."""
        try:
            device = torch.device(self.device) if self.device is not None else None
        except (RuntimeError, TypeError):
            raise UserError(f"--device must name a torch device (cpu, cuda, cuda:1, ...), got {self.device!r}") from None
        if device is None:
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if device.type == "cuda" and not torch.cuda.is_available():
            raise UserError(f"--device {self.device}: this machine has no CUDA GPU (use --device cpu)")
        if device.type == "meta":
            raise UserError("--device meta holds no data: use cpu or cuda")
        dtype = self.dtype
        if dtype is None:
            dtype = "bf16" if device.type == "cuda" else "fp32"
        for flag, value in (("--dtype", dtype), ("--vae-dtype", self.vae_dtype)):
            if value is not None and value not in DTYPES:
                raise UserError(f"{flag} must be one of {', '.join(DTYPES)}, got {value!r}")
            if value == "fp16" and device.type == "cpu":
                raise UserError(f"{flag} fp16 needs a GPU; on the CPU use bf16 or fp32")
        if self.offload not in OFFLOADS:
            raise UserError(f"--offload must be one of {', '.join(OFFLOADS)}, got {self.offload!r}")
        if self.memory_resident and self.offload != "none":
            raise UserError(f"--memory-resident goes with --offload none (--offload {self.offload} moves every part)")
        return dataclasses.replace(self, device=str(device), dtype=dtype, vae_dtype=self.vae_dtype or dtype)

    @property
    def torch_dtype(self) -> torch.dtype:
        """The weights' dtype (after :meth:`resolved`)."""
        return DTYPES[self.resolved().dtype]


class _OneAtATime:
    """Parts that share the device one at a time (offload ``model``)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.current: nn.Module | None = None

    def bring(self, module: nn.Module) -> None:
        if self.current is module:
            return
        if self.current is not None:
            self.current.to("cpu")
        module.to(self.device)
        self.current = module

    def release(self, module: nn.Module) -> None:
        if self.current is module:
            module.to("cpu")
            self.current = None


def _bring_hook(group: _OneAtATime):
    """An accelerate hook that brings its module (and the call's tensors) to the group's device."""
    from accelerate.hooks import ModelHook
    from accelerate.utils import send_to_device

    class BringToDevice(ModelHook):
        def pre_forward(self, module, *args, **kwargs):
            group.bring(module)
            return send_to_device(args, group.device), send_to_device(kwargs, group.device)

    return BringToDevice()


class Placement:
    """What :func:`place` did: the execution device and dtype, and which parts come to the device on demand."""

    def __init__(
        self,
        device: torch.device,
        dtype: torch.dtype,
        on_demand: tuple[nn.Module, ...] = (),
        group: _OneAtATime | None = None,
    ) -> None:
        self.device = device
        self.dtype = dtype
        self._on_demand = on_demand
        self._group = group

    @contextlib.contextmanager
    def using(self, module: nn.Module) -> Iterator[None]:
        """``module`` on the device for the block; an on-demand part goes back to CPU RAM after it."""
        if not any(module is part for part in self._on_demand):
            yield
            return
        if self._group is not None:
            self._group.bring(module)
        else:
            module.to(self.device)
        try:
            yield
        finally:
            if self._group is not None:
                self._group.release(module)
            else:
                module.to("cpu")


def _first_parameter(module: nn.Module) -> torch.Tensor:
    return next(module.parameters())


def restore_rope_frequencies(model: nn.Module) -> None:
    """Recompute in float32 the RoPE inverse frequencies that a cast to a lower precision rounded.

    ``module.to(torch.bfloat16)`` also casts float buffers; transformers' rotary
    embeddings (the memory model's Qwen2) multiply positions of up to ~12k by
    them, so a bf16-rounded frequency turns the angle by radians.
    """
    for module in model.modules():
        inv_freq = getattr(module, "inv_freq", None)
        compute = getattr(module, "compute_default_rope_parameters", None)
        if not isinstance(inv_freq, torch.Tensor) or inv_freq.dtype == torch.float32 or compute is None:
            continue
        if getattr(module, "rope_type", "default") != "default":
            continue
        frequencies, _ = compute(module.config)
        frequencies = frequencies.to(device=inv_freq.device, dtype=torch.float32)
        module.inv_freq = frequencies
        if isinstance(getattr(module, "original_inv_freq", None), torch.Tensor):
            module.original_inv_freq = frequencies.clone()


def cast_parameters(model: nn.Module, dtype: torch.dtype) -> None:
    """Floating parameters to ``dtype`` in place, one at a time (buffers keep their dtype)."""
    for parameter in model.parameters():
        if parameter.is_floating_point() and parameter.dtype != dtype:
            parameter.data = parameter.data.to(dtype)


def enable_vae_tiling(vae: nn.Module) -> None:
    """diffusers' tiled VAE, its tile overlaps rounded to whole latents so that tiles add up to the frame.

    diffusers steps tiles by ``int(tile * (1 - overlap))`` and keeps ``tile -
    int(tile * overlap)`` of each, in latents on one side and pixels on the
    other; the two agree only when ``overlap`` x the latent tile is a whole
    number (the paper VAE's defaults, 1/6 of 30 and 1/5 of 45 latents, are).
    For another VAE (the tiny preset's: 16-latent tiles) the overlap is
    rounded to whole latents, else the decoded frame would come out larger
    than the latents say.
    """
    vae.enable_tiling()
    compression = 2 ** (len(vae.config.block_out_channels) - 1)
    for axis in ("height", "width"):
        latent = getattr(vae, f"tile_latent_min_{axis}")
        sample = getattr(vae, f"tile_sample_min_{axis}")
        if latent < 2 or sample != latent * compression:
            continue
        blend = min(max(round(latent * getattr(vae, f"tile_overlap_factor_{axis}")), 1), latent - 1)
        factor = blend / latent
        for nudge in (0.0, 1e-9, -1e-9):  # int() of a float product: make it land on the whole number
            f = factor + nudge
            if int(latent * (1 - f)) == latent - blend and int(sample * f) == blend * compression and int(
                latent * f
            ) == blend and int(sample * (1 - f)) == (latent - blend) * compression:
                setattr(vae, f"tile_overlap_factor_{axis}", f)
                break


def _resolve(module: nn.Module, path: str) -> nn.Module | None:
    for name in path.split("."):
        module = getattr(module, name, None)
        if module is None:
            return None
    return module


def streamed_modules(model: LongAnimationModel) -> list[nn.Module]:
    """The modules whose weights sequential offload streams (:data:`STREAMED`), each once."""
    found: list[nn.Module] = []
    for part_path, paths in STREAMED.items():
        part = _resolve(model, part_path)
        for path in paths:
            module = _resolve(part, path) if part is not None else None
            if module is None:
                continue
            children = list(module) if isinstance(module, nn.ModuleList) else [module]
            found += [child for child in children if any(True for _ in child.parameters())]
    return found


def _stream(model: LongAnimationModel, device: torch.device) -> None:
    """Sequential offload: streamed modules via accelerate's cpu_offload, everything else onto the device."""
    from accelerate import cpu_offload

    streamed = streamed_modules(model)
    inside = {id(sub) for module in streamed for sub in module.modules()}
    moved: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # id -> (old, new): tied weights stay tied

    def on_device(tensor: torch.Tensor) -> torch.Tensor:
        if id(tensor) not in moved:
            new = tensor.data.to(device)
            if isinstance(tensor, nn.Parameter):
                new = nn.Parameter(new, requires_grad=tensor.requires_grad)
            moved[id(tensor)] = (tensor, new)
        return moved[id(tensor)][1]

    for module in model.modules():  # the resident pieces first, while every weight is still real
        if id(module) in inside:
            continue
        for table in (module._parameters, module._buffers):
            for name, tensor in table.items():
                if tensor is not None and tensor.device != device:
                    table[name] = on_device(tensor)
    for module in streamed:
        cpu_offload(module.to("cpu"), execution_device=device)


def place(pipeline: LongAnimationPipeline, options: PlacementOptions | None) -> Placement:
    """Apply ``options`` to the pipeline's model (once per model); ``None`` leaves the model as it is."""
    model = pipeline.model
    if options is None:
        parameter = _first_parameter(model.sketch_dit)
        return Placement(parameter.device, parameter.dtype)
    if any(hasattr(module, "_hf_hook") for module in model.modules()):
        raise ValueError("this model already has a placement: apply one per model")
    options = options.resolved()
    device, dtype = torch.device(options.device), DTYPES[options.dtype]
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    backbone = model.backbone
    cast_parameters(model, dtype)
    cast_parameters(model.backbone.vae, DTYPES[options.vae_dtype])
    restore_rope_frequencies(model)
    if options.vae_tiling:
        enable_vae_tiling(backbone.vae)
    if options.vae_slicing:
        backbone.vae.enable_slicing()
    text_encoder, memory_model, vae = backbone.text_encoder, model.memory_model, backbone.vae
    if options.offload == "sequential":
        pipeline.weights_digest  # noqa: B018 -- hashed while every weight is still real (streamed ones become meta)
        _stream(model, device)
        return Placement(device, dtype)
    if options.offload == "model":
        from accelerate.hooks import add_hook_to_module

        group = _OneAtATime(device)
        for module in (text_encoder, pipeline.denoiser, vae, memory_model):
            module.to("cpu")
        for module in (text_encoder, pipeline.denoiser, vae):
            add_hook_to_module(module, _bring_hook(group), append=True)
        return Placement(device, dtype, (text_encoder, memory_model), group)
    on_demand = (text_encoder,) if options.memory_resident else (text_encoder, memory_model)
    for module in on_demand:
        module.to("cpu")
    for module in (backbone.transformer, model.sketch_dit, model.dglm, vae):
        module.to(device)
    if options.memory_resident:
        memory_model.to(device)
    return Placement(device, dtype, on_demand)
