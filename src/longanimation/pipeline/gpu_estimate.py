"""An estimate of the peak GPU memory of one segment under each placement (``info --estimate HxW``).

It is an estimate, not a measurement. How it is computed:

* **weights**: the bytes of every parameter of each part at the chosen dtype
  (buffers at their own), counted on a model built on the meta device;
* **activations**: the code that runs for one segment at the requested model
  size -- T5 on the prompt, the VAE encoding the segment's line art
  (``F`` frames), one guided denoiser call (transformer + SketchDiT + DGLM,
  batch 2 with classifier-free guidance, ``(F - 1) / 4 + 1`` latent frames plus
  the leading ones, patches of 2 x 2 x 2, a memory of the size it is bounded
  to), the VAE decode with the conversion to uint8, and the memory model
  reading a chunk of the segment's new frames against a full memory -- is run
  on meta tensors (shapes only, nothing computed) while a dispatch mode adds
  up the bytes of every tensor each operation creates and takes them off when
  the last reference to them goes; the largest sum is the phase's activation
  peak. Attention is counted as a fused kernel (PyTorch SDPA's flash /
  memory-efficient path: its output only, no N x N score matrix). The VAE
  runs diffusers' own code, tiled or not; its encoder / decoder calls of equal
  shapes are counted once and replayed, and tile blending (in-place, one row
  at a time) is left out;
* **persistent** tensors on the device for the whole run: the memory state at
  its bound (``max_global_summaries`` summary tokens at every cached layer),
  the sampler's float32 latents, the conditions and the text embeddings;
* **peak** of a placement = persistent + the largest, over the phases, of
  (weights on the device in that phase + the phase's activations). Weights on
  the device: ``none`` -- denoiser + VAE always, the text encoder while it
  encodes, the memory model while it reads (always with
  ``memory_resident``); ``model`` -- the part that runs; ``sequential`` -- the
  pieces that stay on the device plus the largest streamed layer.

Not included: the CUDA context (~0.5-1 GB per process, outside
``torch.cuda.max_memory_allocated``), the caching allocator's rounding and
fragmentation, and kernel workspaces (cuBLAS, cuDNN). The numbers compare
with ``torch.cuda.max_memory_allocated`` (``benchmarks/gpu_paper.py`` prints
both).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

from ..errors import UserError
from ..models.conditioning import Conditions, guided_velocity
from ..models.memory_state import MemoryView, SummaryCache
from .placement import (
    DTYPES,
    OFFLOADS,
    cast_parameters,
    enable_vae_tiling,
    streamed_modules,
)

GiB = 2**30
PHASES = ("text", "encode", "denoise", "decode", "memory")
PHASE_LABELS = {
    "text": "text encoding (T5, once per shot)",
    "encode": "VAE encode of the segment's line art",
    "denoise": "one denoising step",
    "decode": "VAE decode + uint8 frames",
    "memory": "memory model reading new frames",
}
UNIT_LABELS = {
    "text": "text encoder (T5)",
    "denoiser": "denoiser (transformer + SketchDiT + DGLM)",
    "vae": "VAE",
    "memory": "memory model",
}
PHASE_UNIT = {"text": "text", "encode": "vae", "denoise": "denoiser", "decode": "vae", "memory": "memory"}


# ---------------------------------------------------------------------- counting live bytes
class _Allocation:
    """The bytes of one tensor storage created while tracing; given back when the last tensor holding it goes."""

    __slots__ = ("nbytes", "tracker")

    def __init__(self, nbytes: int, tracker: LiveBytes) -> None:
        self.nbytes, self.tracker = nbytes, tracker
        tracker.live += nbytes
        tracker.peak = max(tracker.peak, tracker.live)

    def __del__(self) -> None:
        self.tracker.live -= self.nbytes


class LiveBytes(TorchDispatchMode):
    """Counts the bytes of the device tensors operations create, and the largest sum alive at once (``peak``)."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        returns = func._schema.returns
        outputs = tree_flatten(out)[0]
        pairs = [(returns[0], t) for t in outputs] if len(returns) == 1 else list(zip(returns, outputs))
        for info, tensor in pairs:
            if not isinstance(tensor, torch.Tensor) or tensor.device.type == "cpu":
                continue
            alias = info.alias_info
            if alias is None:
                tensor._live_bytes = _Allocation(tensor.untyped_storage().nbytes(), self)
            elif not alias.is_write and not hasattr(tensor, "_live_bytes"):  # a view keeps its base alive
                base = next((a for a in tree_flatten((args, kwargs))[0] if isinstance(a, torch.Tensor)), None)
                allocation = getattr(base, "_live_bytes", None)
                if allocation is not None:
                    tensor._live_bytes = allocation
        return out


class FusedAttention(TorchFunctionMode):
    """``F.scaled_dot_product_attention`` as a fused kernel allocates it: the output only."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            query = args[0] if args else kwargs["query"]
            value = args[2] if len(args) > 2 else kwargs["value"]
            return query.new_empty(*query.shape[:-1], value.shape[-1])
        return func(*args, **kwargs)


@contextlib.contextmanager
def tracing() -> Iterator[LiveBytes]:
    """Count live bytes (and fused attention) for the block; read ``peak`` after it."""
    tracker = LiveBytes()
    with torch.no_grad(), FusedAttention(), tracker:
        yield tracker


@dataclasses.dataclass(frozen=True)
class _Shape:
    shape: tuple[int, ...]
    dtype: torch.dtype
    device: torch.device


@contextlib.contextmanager
def _replayed(modules: list[nn.Module], tracker: LiveBytes) -> Iterator[None]:
    """Calls of each module with inputs of shapes already seen add that call's extra peak and fresh outputs.

    The bytes a block allocates depend on its class, its weights' shapes and its input
    shapes only, so a stack of equal blocks (or a VAE's frame batches) is traced once
    per shape and replayed after.
    """
    seen: dict = {}
    with contextlib.ExitStack() as stack:
        for module in modules:
            stack.enter_context(_replayed_one(module, tracker, seen))
        yield


@contextlib.contextmanager
def _replayed_one(module: nn.Module, tracker: LiveBytes, seen: dict) -> Iterator[None]:
    original = module.forward
    kind = (type(module), tuple((name, tuple(t.shape), t.dtype) for name, t in module.state_dict().items()))

    def forward(*args, **kwargs):
        leaves, spec = tree_flatten((args, kwargs))
        shapes = ((tuple(x.shape), x.dtype) if isinstance(x, torch.Tensor) else repr(x) for x in leaves)
        key = (kind, str(spec), *shapes)
        if key in seen:
            excess, template = seen[key]
            tracker.peak = max(tracker.peak, tracker.live + excess)
            return tree_map(
                lambda x: torch.empty(x.shape, dtype=x.dtype, device=x.device) if isinstance(x, _Shape) else x,
                template,
            )
        start, before = tracker.live, tracker.peak
        tracker.peak = tracker.live
        out = original(*args, **kwargs)
        excess = tracker.peak - start
        tracker.peak = max(before, tracker.peak)
        seen[key] = (
            excess,
            tree_map(lambda x: _Shape(tuple(x.shape), x.dtype, x.device) if isinstance(x, torch.Tensor) else x, out),
        )
        return out

    module.forward = forward
    try:
        yield
    finally:
        del module.forward


@contextlib.contextmanager
def _vae_counting(vae: nn.Module, tracker: LiveBytes, tiled: bool) -> Iterator[None]:
    """The VAE tiled or not, its encoder/decoder calls replayed, tile blending skipped."""
    tiling = vae.use_tiling
    vae.use_tiling = tiled
    vae.blend_v = vae.blend_h = lambda a, b, extent: b
    try:
        blocks = [m for m in vae.modules() if type(m).__name__.endswith("ResnetBlock3D")]
        with _replayed([vae.encoder, vae.decoder, *blocks], tracker):
            yield
    finally:
        vae.use_tiling = tiling
        del vae.blend_v, vae.blend_h


# ---------------------------------------------------------------------- the estimate
def _nbytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _module_bytes(*modules: nn.Module) -> int:
    return sum(_nbytes(m.parameters()) + _nbytes(m.buffers()) for m in modules)


@dataclasses.dataclass
class Estimate:
    """Bytes per part, phase and placement for one segment (module docstring)."""

    preset: str
    height: int
    width: int
    dtype: str
    frames: int
    guided: bool
    latent_grid: tuple[int, int, int]  # latent frames incl. the leading ones, height, width
    vision_tokens: int
    text_tokens: int
    memory_tokens: tuple[int, int]  # global (at the bound), local
    weights: dict[str, int]  # unit -> bytes
    resident_when_streamed: int  # sequential: the pieces that stay on the device
    largest_streamed: dict[str, int]  # sequential: unit -> its largest layer, loaded at once
    activations: dict[str, tuple[int, int | None]]  # phase -> (VAE in one piece, VAE tiled; None: tiling fails)
    persistent: int

    def weights_on_device(self, offload: str, phase: str, memory_resident: bool = False) -> int:
        w = self.weights
        if offload == "sequential":
            return self.resident_when_streamed + self.largest_streamed[PHASE_UNIT[phase]]
        if offload == "model":
            return w[PHASE_UNIT[phase]]
        total = w["denoiser"] + w["vae"]
        if phase == "text":
            total += w["text"]
        if phase == "memory" or memory_resident:
            total += w["memory"]
        return total

    @property
    def tiling_works(self) -> bool:
        return all(self.activations[phase][1] is not None for phase in PHASES)

    def peak(self, offload: str, tiled: bool, memory_resident: bool = False) -> int | None:
        """Estimated peak bytes on the device for a placement (None: diffusers' VAE tiling fails at this size)."""
        if offload not in OFFLOADS:
            raise ValueError(f"offload must be one of {OFFLOADS}")
        if tiled and not self.tiling_works:
            return None
        return self.persistent + max(
            self.weights_on_device(offload, phase, memory_resident) + self.activations[phase][int(tiled)]
            for phase in PHASES
        )


def parse_size(text: str) -> tuple[int, int]:
    """``"768x1360"`` -> (768, 1360): height x width."""
    parts = text.lower().replace(" ", "").split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise UserError(f"--estimate takes HEIGHTxWIDTH in pixels, e.g. 768x1360; got {text!r}")
    return int(parts[0]), int(parts[1])


def _memory_tokens(config, fresh_frames: int) -> tuple[int, int, int]:
    """Summary tokens DGLM reads at the memory's bound: global (cache + provisional), local; and pending frames."""
    per_frame = config.tokens_per_frame
    finest, largest = config.chunk_sizes[-1], config.chunk_sizes[0]
    pending = largest - 1  # frames left undecided at most; summarised provisionally in the finest chunks

    def finest_chunks(frames: int) -> int:
        sizes = [finest] * (frames // finest) + ([frames % finest] if frames % finest else [])
        return sum(config.summaries_for(size * per_frame) for size in sizes)

    suffix = len(config.prompt_suffix)
    global_tokens = len(config.prompt_prefix) + config.max_global_summaries + finest_chunks(pending) + suffix
    return global_tokens, finest_chunks(fresh_frames) + suffix, pending


def estimate(preset: str, height: int, width: int, dtype: str = "bf16") -> Estimate:
    """The estimate for ``preset`` at model size ``height`` x ``width`` with weights in ``dtype``."""
    from ..models.longanimation_model import LongAnimationModel

    if dtype not in DTYPES:
        raise UserError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    torch_dtype = DTYPES[dtype]
    model = LongAnimationModel.from_preset(preset, device="meta")
    cast_parameters(model, torch_dtype)
    backbone, segment = model.backbone, model.segment
    transformer = backbone.transformer.config
    multiple = backbone.spatial_compression * transformer.patch_size
    if height % multiple or width % multiple:
        raise UserError(f"the model size must be a multiple of {multiple} in height and width, got {height}x{width}")
    meta = {"device": "meta", "dtype": torch_dtype}
    frames, guided = segment.frames, segment.guidance_scale > 1
    latent_frames = backbone.num_latent_frames(frames)
    lead = model.sketch_dit.num_leading_frames(latent_frames)
    h, w = height // backbone.spatial_compression, width // backbone.spatial_compression
    channels, text_length = backbone.latent_channels, backbone.max_text_length
    vision_tokens = (lead + latent_frames) // transformer.patch_size_t * (h // transformer.patch_size) * (
        w // transformer.patch_size
    )
    memory = model.memory_model.config
    fresh = frames - segment.overlap - 1
    global_tokens, local_tokens, pending = _memory_tokens(memory, fresh)
    element = torch.empty(0, **meta).element_size()
    batch_text = 2 if guided else 1

    def latent(count: int, dtype: torch.dtype = torch_dtype) -> torch.Tensor:
        return torch.empty(1, count, channels, h, w, device="meta", dtype=dtype)

    def view(tokens: int) -> MemoryView:
        layers = range(len(memory.memory_layers))
        return MemoryView(
            tuple(torch.empty(1, tokens, memory.kv_width, **meta) for _ in layers),
            tuple(torch.empty(1, tokens, memory.kv_width, **meta) for _ in layers),
        )

    activations: dict[str, tuple[int, int]] = {}
    with tracing() as tracker:
        backbone.text_encoder(torch.zeros(batch_text, text_length, dtype=torch.long, device="meta"))
    activations["text"] = (tracker.peak,) * 2

    encode, decode = [], []
    enable_vae_tiling(backbone.vae)  # the geometry colorize --vae-tiling uses; _vae_counting switches it on and off
    for tiled in (False, True):
        pixels = torch.empty(1, 3, frames, height, width, **meta)
        try:
            with tracing() as tracker, _vae_counting(backbone.vae, tracker, tiled):
                encoded = backbone.encode_video(pixels)
            encode.append(tracker.peak + _nbytes([pixels]))
            with tracing() as tracker, _vae_counting(backbone.vae, tracker, tiled):
                video = backbone.decode_latents(latent(latent_frames, torch.float32))[0]
                ((video.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0)
            decode.append(tracker.peak)
            if encoded.shape[-2:] != (h, w) or video.shape[-2:] != (height, width):
                raise RuntimeError("the tiles do not add up to the frame")
        except RuntimeError:  # diffusers' tiles can end in a strip thinner than a kernel, or not add up
            if not tiled:
                raise
            encode, decode = encode[:1] + [None], decode[:1] + [None]
    activations["encode"], activations["decode"] = tuple(encode), tuple(decode)

    text = torch.empty(batch_text, text_length, transformer.text_embed_dim, **meta)
    global_view = view(global_tokens)
    conditions = Conditions(latent(lead + latent_frames), text, lead, latent(lead + latent_frames))
    model_input = latent(lead + latent_frames)
    blocks = [*backbone.transformer.transformer_blocks, *model.sketch_dit.transformer_blocks]
    with tracing() as tracker, _replayed(blocks, tracker):
        denoiser = model.denoiser().eval()
        timestep = torch.full((1,), 999, device="meta")
        memory_inputs = {"global_view": global_view, "local_view": view(local_tokens)}
        guided_velocity(denoiser, model_input, timestep, conditions, memory_inputs, segment.guidance_scale)
    activations["denoise"] = (tracker.peak + _nbytes([model_input, *global_view.keys, *global_view.values]),) * 2

    memory_model = model.memory_model
    cached = memory_model.cached_layers
    cache_tokens = len(memory.prompt_prefix) + memory.max_global_summaries
    cache = SummaryCache(
        tuple(torch.empty(cache_tokens, memory.kv_width, **meta) for _ in range(cached)),
        tuple(torch.empty(cache_tokens, memory.kv_width, **meta) for _ in range(cached)),
        torch.zeros(cache_tokens, dtype=torch.int64, device="meta"),
        torch.zeros(cache_tokens, dtype=torch.bool, device="meta"),
    )
    cache_bytes = _nbytes([*cache.keys, *cache.values, cache.weights, cache.pinned])
    with tracing() as tracker:
        memory_model.encode_frame(torch.empty(3, height, width, **meta))
    reading = tracker.peak
    chunk = memory.chunk_sizes[0] * memory.tokens_per_frame
    with tracing() as tracker:
        memory_model.summarize(cache, torch.empty(chunk, memory.hidden_size, **meta))
    # New frames and their LM / CLIP tokens, then a chunk against the full memory (and the memory copied as it grows).
    frames_in = fresh * 3 * height * width * element
    tokens_in = fresh * memory.tokens_per_frame * (memory.hidden_size + memory.vision_hidden_size) * element
    activations["memory"] = (frames_in + tokens_in + max(reading, tracker.peak + cache_bytes),) * 2

    views = 2 * len(memory.memory_layers) * memory.kv_width * element
    state = cache_bytes + views * (local_tokens + global_tokens - cache_tokens)
    state += pending * memory.tokens_per_frame * (memory.hidden_size + memory.vision_hidden_size) * element
    latents = 3 * _nbytes([latent(lead + latent_frames, torch.float32)])  # latents, x0, fusion's stored overlap
    persistent = state + latents + _nbytes([conditions.image, conditions.sketch, text])

    streamed = streamed_modules(model)
    inside = {id(sub) for module in streamed for sub in module.modules()}
    units = {
        "text": (backbone.text_encoder,),
        "denoiser": (backbone.transformer, model.sketch_dit, model.dglm),
        "vae": (backbone.vae,),
        "memory": (memory_model,),
    }
    weights = {unit: _module_bytes(*parts) for unit, parts in units.items()}
    largest = {
        unit: max(
            (_nbytes(sub.parameters(recurse=False)) for part in parts for sub in part.modules() if id(sub) in inside),
            default=0,
        )
        for unit, parts in units.items()
    }
    return Estimate(
        preset=preset,
        height=height,
        width=width,
        dtype=dtype,
        frames=frames,
        guided=guided,
        latent_grid=(lead + latent_frames, h, w),
        vision_tokens=vision_tokens,
        text_tokens=text_length,
        memory_tokens=(global_tokens, local_tokens),
        weights=weights,
        resident_when_streamed=sum(weights.values()) - sum(_module_bytes(m) for m in streamed),
        largest_streamed=largest,
        activations=activations,
        persistent=persistent,
    )


def _gib(value: int | None) -> str:
    return "   fails" if value is None else f"{value / GiB:8.2f}"


def estimate_lines(result: Estimate) -> list[str]:
    """The printed table of :func:`estimate` (GiB = 2^30 bytes)."""
    frames, h, w = result.latent_grid
    guidance = "batch 2: classifier-free guidance" if result.guided else "batch 1: no guidance"
    lines = [
        (
            f"peak GPU memory, ESTIMATED (not measured): preset {result.preset}, model size "
            f"{result.height}x{result.width} (HxW), one {result.frames}-frame segment, {result.dtype} weights"
        ),
        (
            f"  latents {frames} frames (with the leading ones) x {h} x {w} -> {result.vision_tokens:,} vision tokens "
            f"(patch 2x2x2) + {result.text_tokens} text tokens, {guidance}"
        ),
        (
            f"  DGLM memory: {result.memory_tokens[0]:,} global summary tokens (at the bound) + "
            f"{result.memory_tokens[1]:,} local"
        ),
        "",
        "weights (GiB)",
    ]
    lines += [f"  {UNIT_LABELS[unit]:<56}{_gib(size)}" for unit, size in result.weights.items()]
    lines += [
        f"  {'sequential offload: pieces kept on the device':<56}{_gib(result.resident_when_streamed)}",
        f"  {'sequential offload: largest layer streamed at once':<56}{_gib(max(result.largest_streamed.values()))}",
        "",
        f"{'activations (GiB)':<58}{'VAE whole':>10}{'VAE tiled':>11}",
    ]
    for phase in PHASES:
        whole, tiled = result.activations[phase]
        lines.append(f"  {PHASE_LABELS[phase]:<56}{_gib(whole):>10}{_gib(tiled):>11}")
    lines += [
        f"  {'persistent (memory state at its bound, latents, text)':<56}{_gib(result.persistent):>10}",
        "",
        f"{'peak GPU memory (GiB)':<58}{'VAE whole':>10}{'VAE tiled':>11}",
    ]
    rows = [
        ("--offload none", "none", False),
        ("--offload none --memory-resident", "none", True),
        ("--offload model", "model", False),
        ("--offload sequential", "sequential", False),
    ]
    for label, offload, resident in rows:
        whole, tiled = (result.peak(offload, t, resident) for t in (False, True))
        lines.append(f"  {label:<56}{_gib(whole):>10}{_gib(tiled):>11}")
    lines += [
        "",
        *(
            []
            if result.tiling_works
            else ["VAE tiled: diffusers' tiling fails at this size (a tile too thin, or tiles not adding up).", ""]
        ),
        "An estimate: parameter bytes per part at the dtype, plus activations counted by running the",
        "segment's code on meta tensors (bytes of every tensor alive at once; attention as a fused",
        "SDPA kernel, no N x N matrix; diffusers' VAE code, tiled or not). Peak = persistent + the largest",
        "phase's weights on the device + its activations. Not included: the CUDA context (~0.5-1 GiB),",
        "allocator fragmentation, kernel workspaces. Compare with torch.cuda.max_memory_allocated.",
    ]
    return lines
