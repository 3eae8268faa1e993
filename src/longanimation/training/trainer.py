"""The training loop on accelerate: one stage, one process or DDP, exact resume.

Run layout (``OUTPUT``)::

    checkpoints/step-N/   resumable state (:mod:`~longanimation.training.checkpointing`), last k kept
    log.csv, loss.png     per-step log and its plot (:mod:`~longanimation.training.logs`)
    tensorboard/          event files, when tensorboard is installed
    replicas.json         per-process digests of the trained weights (DDP replicas must agree)
    model/                the whole updated model folder, input of the next stage

Only the stage module -- the trainable parts -- goes through
``accelerator.prepare``; the frozen parts stay plain modules in the
mixed-precision dtype (bf16/fp16, else float32) while trained parts keep
float32 master weights. DDP is the tested multi-process path; under FSDP
(``configs/accelerate/fsdp.yaml``, ``zero2.yaml``) checkpoints hold full
state dicts and the model folder is written inside ``summon_full_params``
(untested without GPUs); DeepSpeed is refused.

Every random draw of step ``s`` on process ``r`` comes from a generator
seeded by ``(seed, r, s)`` and every clip from the deterministic sample
stream of :mod:`~longanimation.training.data`, so a run stopped at any
checkpoint and resumed reproduces the uninterrupted run exactly (same
weights, bit for bit, on the same hardware).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from accelerate.optimizer import AcceleratedOptimizer
from accelerate.utils import DistributedType, set_seed

from ..atomic import atomic_file
from ..errors import UserError
from ..models.longanimation_model import LongAnimationModel
from .batches import ClipBatch, collate
from .checkpointing import (
    latest_checkpoint,
    load_optimizer,
    load_scheduler,
    load_weights,
    read_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from .config import TrainConfig, check_against_model
from .data import ClipOrder, build_dataset
from .logs import RunLog
from .model_source import load_model
from .stages import STAGES, StepContext, TrainingStage

MODEL_FOLDER, REPLICAS = "model", "replicas.json"
MIXED_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
REPLICATED = (DistributedType.NO, DistributedType.MULTI_CPU, DistributedType.MULTI_GPU)


def step_generator(seed: int, rank: int, step: int) -> torch.Generator:
    """The CPU generator of step ``step`` on process ``rank``."""
    high, low = np.random.SeedSequence([seed, rank, step]).generate_state(2)
    return torch.Generator().manual_seed(int(high) << 32 | int(low))


def lr_factor(config: TrainConfig) -> Callable[[int], float]:
    """Multiplier of the base learning rate after ``n`` optimizer steps: linear warmup, then constant or cosine."""
    settings = config.optimizer

    def factor(step: int) -> float:
        if step < settings.warmup_steps:
            return (step + 1) / settings.warmup_steps
        if settings.schedule == "cosine":
            progress = (step - settings.warmup_steps) / max(1, config.max_steps - settings.warmup_steps)
            return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
        return 1.0

    return factor


@dataclasses.dataclass
class Run:
    """A stage ready to train: the model, the stage module and its prepared form, optimizer, position."""

    model: LongAnimationModel
    stage: TrainingStage
    module: torch.nn.Module  # the prepared stage (DDP-wrapped with several processes)
    optimizer: AcceleratedOptimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    trained: list[torch.nn.Parameter]
    step: int = 0
    consumed: int = 0  # sample-stream positions used so far (see .data)


def train(config: TrainConfig, *, resume: bool = False, stop_at: int | None = None, quiet: bool = False) -> Path:
    """Run ``config.stage`` until ``config.max_steps`` (or step ``stop_at``); returns the model folder."""
    stage_class = STAGES[config.stage]
    output = Path(config.output)
    accelerator = Accelerator(
        cpu=config.cpu or not torch.cuda.is_available(),  # accelerate only forms CPU process groups when told
        mixed_precision=config.mixed_precision,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=stage_class.find_unused_parameters)],
    )
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        raise UserError(
            "DeepSpeed steps the optimizer inside backward and keeps partitioned state that these safetensors "
            "checkpoints cannot hold; use configs/accelerate/zero2.yaml (FSDP SHARD_GRAD_OP = ZeRO stage 2)"
        )
    main = accelerator.is_main_process

    def say(message: str) -> None:
        if main and not quiet:
            print(message, file=sys.stderr, flush=True)

    checkpoint = _checkpoint_to_resume(output, config, resume, say)
    run = _build(config, accelerator, checkpoint, say)
    dataset = build_dataset(config.data)
    order = ClipOrder(len(dataset), config.seed, config.data.shuffle)
    end = config.max_steps if stop_at is None else min(stop_at, config.max_steps)
    log = RunLog(output, start_step=run.step, tensorboard=True) if main else None
    progress = _progress_bar(config.stage, run.step, end, disabled=quiet or not main)
    while run.step < end:
        started = time.perf_counter()
        row = _train_step(run, config, accelerator, lambda indices: collate([dataset[i] for i in indices]), order)
        row.update(step=run.step, seconds=time.perf_counter() - started)
        progress.update(1)
        progress.set_postfix(loss=f"{row['loss']:.4g}")
        if main:
            log.add(row)
            if run.step % config.log_every == 0:
                log.write()
        if run.step % config.checkpoint_every == 0 or run.step == end:
            _save(accelerator, output, config, run, log)
    progress.close()

    _check_replicas(accelerator, run.stage, output)
    folder = output / MODEL_FOLDER
    with _full_parameters(run.module):
        if main:
            run.model.save_pretrained(folder, include_backbone=config.model.save_backbone)
    accelerator.wait_for_everyone()
    if main:
        log.write()
        log.close()
        say(f"{config.stage}: {run.step} steps done; model written to {folder}")
    return folder


def _build(config: TrainConfig, accelerator: Accelerator, checkpoint: Path | None, say: Callable[[str], None]) -> Run:
    """Model and stage (only its trained parts prepared), AdamW + LR schedule, restored from ``checkpoint``."""
    set_seed(config.seed, device_specific=True)
    model = load_model(config.model, config.stage)
    backbone = model.backbone
    check_against_model(
        config.data, backbone.temporal_compression, backbone.spatial_compression * backbone.transformer.config.patch_size
    )
    stage = STAGES[config.stage](model, config)
    stage.freeze_all_but_trained()
    _set_dtypes(stage, config.mixed_precision)
    if config.gradient_checkpointing:
        _enable_gradient_checkpointing(model)
    if checkpoint is not None:
        stage.load_state_dict(load_weights(checkpoint))
    model.to(accelerator.device)
    stage.to(accelerator.device)

    module = accelerator.prepare(stage)
    settings = config.optimizer
    trained = [parameter for parameter in module.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(
        trained, lr=settings.lr, betas=settings.betas, eps=settings.eps, weight_decay=settings.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config))
    run = Run(model, stage, module, accelerator.prepare(optimizer), scheduler, trained)
    if checkpoint is not None:
        state, _ = read_checkpoint(checkpoint)
        run.step, run.consumed = int(state["step"]), int(state["samples_consumed"])
        load_optimizer(checkpoint, module, optimizer)
        load_scheduler(checkpoint, scheduler)
        if not restore_rng_state(checkpoint, accelerator.process_index):
            say(f"note: {checkpoint.name} has no generator state for process {accelerator.process_index}")
        say(f"resuming {config.stage} from {checkpoint} (step {run.step})")
    return run


def _train_step(
    run: Run,
    config: TrainConfig,
    accelerator: Accelerator,
    load: Callable[[list[int]], ClipBatch],
    order: ClipOrder,
) -> dict[str, float]:
    """One optimizer step over ``gradient_accumulation_steps`` micro-steps; returns the log row (process mean)."""
    world, rank = accelerator.num_processes, accelerator.process_index
    accumulation = config.gradient_accumulation_steps

    def syncing(sync: bool) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext() if sync else accelerator.no_sync(run.module)

    def backward(loss: torch.Tensor) -> None:
        accelerator.backward(loss / accumulation)

    generator = step_generator(config.seed, rank, run.step)
    metrics = []
    for micro in range(accumulation):
        batch = load(order.micro_batch(run.consumed, micro, rank, world, config.batch_size)).to(accelerator.device)
        context = StepContext(run.module, generator, backward, syncing, final=micro == accumulation - 1)
        with accelerator.autocast():
            metrics.append(run.stage.run_step(batch, context))
    row = {name: sum(values[name] for values in metrics) / accumulation for name in metrics[0]}
    if config.optimizer.max_grad_norm > 0:
        row["grad_norm"] = float(accelerator.clip_grad_norm_(run.trained, config.optimizer.max_grad_norm))
    row["lr"] = run.scheduler.get_last_lr()[0]
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    run.step += 1
    run.consumed += accumulation * world * config.batch_size
    return _mean_over_processes(accelerator, row)


# ---------------------------------------------------------------------------- helpers


def _checkpoint_to_resume(output: Path, config: TrainConfig, resume: bool, say: Callable[[str], None]) -> Path | None:
    """The checkpoint ``--resume`` continues from; refuses to start over an existing run without it."""
    latest = latest_checkpoint(output)
    if not resume:
        if latest is not None:
            raise UserError(
                f"{output} already holds checkpoints (latest {latest.name}): pass --resume to continue it, "
                "or choose another --output"
            )
        return None
    if latest is None:
        say(f"no checkpoint under {output}; starting at step 0")
        return None
    state, saved = read_checkpoint(latest)
    if state["stage"] != config.stage:
        raise UserError(f"{latest} is a checkpoint of stage {state['stage']}, not {config.stage}")
    current = config.to_dict()
    changed = sorted(key for key in current if key not in ("output", "max_steps") and saved.get(key) != current[key])
    if changed:
        say(f"note: resuming with settings changed since the checkpoint: {', '.join(changed)}")
    return latest


def _set_dtypes(stage: TrainingStage, mixed_precision: str) -> None:
    """Trained parts keep float32 master weights; frozen parts run in the mixed-precision dtype (else float32)."""
    dtype = MIXED_DTYPES.get(mixed_precision, torch.float32)
    model, backbone = stage.model, stage.model.backbone
    trained = {id(child) for child in stage.children()}
    parts = [backbone.transformer, backbone.vae, backbone.text_encoder, model.sketch_dit, model.memory_model]
    for part in [*parts, model.dglm]:
        if id(part) not in trained:
            part.to(dtype)
    stage.float()


def _enable_gradient_checkpointing(model) -> None:
    """Recompute activations in backward: SketchDiT's blocks, the backbone transformer's and the VAE's."""
    model.sketch_dit.gradient_checkpointing = True
    model.backbone.transformer.enable_gradient_checkpointing()
    model.backbone.vae.enable_gradient_checkpointing()


def _mean_over_processes(accelerator: Accelerator, row: dict[str, float]) -> dict[str, float]:
    if accelerator.num_processes == 1:
        return row
    names = list(row)
    values = torch.tensor([row[name] for name in names], dtype=torch.float64, device=accelerator.device)
    return dict(zip(names, accelerator.reduce(values, reduction="mean").tolist()))


def _save(accelerator: Accelerator, output: Path, config: TrainConfig, run: Run, log: RunLog | None) -> None:
    save_checkpoint(
        accelerator,
        output,
        step=run.step,
        samples_consumed=run.consumed,
        stage_name=config.stage,
        module=run.module,
        optimizer=run.optimizer.optimizer,
        scheduler=run.scheduler,
        config=config.to_dict(),
        keep=config.keep_checkpoints,
    )
    if log is not None:
        log.write()
        log.plot()


def _check_replicas(accelerator: Accelerator, stage: TrainingStage, output: Path) -> None:
    """Each process hashes its trained weights; under DDP (replicated weights) they must all agree."""
    if accelerator.distributed_type not in REPLICATED:
        return
    digest = hashlib.sha256()
    for name, tensor in sorted(stage.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    local = torch.tensor(list(digest.digest()), dtype=torch.int64, device=accelerator.device)
    gathered = accelerator.gather(local).view(accelerator.num_processes, -1).cpu()
    digests = [bytes(row.tolist()).hex() for row in gathered]
    if accelerator.is_main_process:
        with atomic_file(output / REPLICAS) as tmp:
            tmp.write_text(json.dumps({"sha256": digests, "identical": len(set(digests)) == 1}, indent=1) + "\n")
    if len(set(digests)) != 1:
        raise RuntimeError(f"the {accelerator.num_processes} processes ended with different weights: {digests}")


def _full_parameters(module: torch.nn.Module) -> contextlib.AbstractContextManager:
    """Under FSDP, gather the full parameters into the original modules while the model is saved."""
    from torch.distributed.fsdp import FullyShardedDataParallel

    if isinstance(module, FullyShardedDataParallel):
        return FullyShardedDataParallel.summon_full_params(module, writeback=False)
    return contextlib.nullcontext()


def _progress_bar(stage: str, start: int, end: int, *, disabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=end, initial=start, desc=f"train {stage}", unit="step", disable=disabled, dynamic_ncols=True)
