"""Training stages on accelerate: CLI runs, trained parts, exact resume, DDP replicas, config errors.

Everything runs the tiny preset on 32 x 32 toon clips of 9 frames, 2 steps.
"""

from __future__ import annotations

import copy
import csv
import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from longanimation.cli.app import main
from longanimation.models.longanimation_model import LongAnimationModel
from longanimation.training.config import DiffusionConfig, TrainConfig, load_config
from longanimation.training.stages import STAGES
from longanimation.training.data import ClipOrder
from longanimation.training.diffusion import draw_noise, latent_weights, v_prediction_loss
from longanimation.training.stages.sketchdit import SketchDiTStage
from longanimation.training.trainer import lr_factor

# Model parts each stage may change; everything else must stay bit-identical.
TRAINED = {
    "vae": {"vae"},
    "base": {"transformer"},
    "memory-model": {"memory_model"},
    "sketchdit": {"sketch_dit"},
    "memory": {"dglm"},
    "reward": {"dglm"},
}
CHECKPOINT_FILES = {
    "state.json",
    "config.yaml",
    "trainable.safetensors",
    "optimizer.safetensors",
    "optimizer.json",
    "scheduler.json",
    "rng-rank0.safetensors",
    "rng-rank0.json",
}


def write_config(path: Path, **changes) -> Path:
    config = {
        "max_steps": 2,
        "checkpoint_every": 1,
        "keep_checkpoints": 2,
        "model": {"preset": "tiny"},
        "data": {
            "world_seeds": [0, 1],
            "world_frames": 40,
            "segment_frames": 9,
            "history_frames": 8,
            "min_history_frames": 4,
            "height": 32,
            "width": 32,
            "num_clips": 16,
        },
        "optimizer": {"lr": 1.0e-3},
        "reward": {"samples_per_clip": 2, "num_inference_steps": 2},
    }
    config.update(changes)
    path.write_text(yaml.safe_dump(config))
    return path


def train(config: Path, stage: str, output: Path, *extra: str) -> int:
    return main(["train", "--config", str(config), "--stage", stage, "--output", str(output), "--quiet", *extra])


def model_parts(model: LongAnimationModel) -> dict[str, torch.nn.Module]:
    backbone = model.backbone
    return {
        "transformer": backbone.transformer,
        "vae": backbone.vae,
        "text_encoder": backbone.text_encoder,
        "sketch_dit": model.sketch_dit,
        "memory_model": model.memory_model,
        "dglm": model.dglm,
    }


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    first, second = a.state_dict(), b.state_dict()
    return first.keys() == second.keys() and all(torch.equal(first[name], second[name]) for name in first)


def read_log(output: Path) -> list[dict[str, str]]:
    with open(output / "log.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def initial_model() -> LongAnimationModel:
    return LongAnimationModel.from_preset("tiny", seed=0)


@pytest.mark.parametrize("stage", STAGES)
def test_stage_trains_only_its_parts(stage, initial_model, tmp_path):
    output = tmp_path / "run"
    assert train(write_config(tmp_path / "config.yaml"), stage, output) == 0

    checkpoints = sorted(path.name for path in (output / "checkpoints").iterdir())
    assert checkpoints == ["step-1", "step-2"]
    assert {path.name for path in (output / "checkpoints" / "step-2").iterdir()} == CHECKPOINT_FILES
    state = json.loads((output / "checkpoints" / "step-2" / "state.json").read_text())
    assert (state["stage"], state["step"], state["samples_consumed"], state["world_size"]) == (stage, 2, 2, 1)
    rows = read_log(output)
    assert [row["step"] for row in rows] == ["1", "2"]
    assert all(np.isfinite(float(row["loss"])) for row in rows)
    if stage == "reward":
        assert all(float(row["reward_mean"]) < 0 for row in rows)  # -distance of eq. 5
    assert (output / "loss.png").read_bytes().startswith(b"\x89PNG")

    trained = LongAnimationModel.from_pretrained(output / "model")
    for name, part in model_parts(trained).items():
        unchanged = same_weights(part, model_parts(initial_model)[name])
        assert unchanged == (name not in TRAINED[stage]), name
    weights = load_file(output / "checkpoints" / "step-2" / "trainable.safetensors")
    prefixes = {name.split(".")[0] for name in weights}
    expected = {"vae": {"vae"}, "base": {"transformer"}, "memory-model": {"memory_model", "color_head"}}
    assert prefixes == expected.get(stage, TRAINED[stage])


def test_stages_chain_through_model_folders(tmp_path):
    """vae -> base -> memory-model -> sketchdit -> memory -> reward, each from the previous OUTPUT/model."""
    previous = None
    for stage in STAGES:
        model = {"preset": "tiny"} if previous is None else {"init_from": str(previous)}
        config = write_config(tmp_path / f"{stage}.yaml", max_steps=1, model=model)
        assert train(config, stage, tmp_path / stage) == 0
        previous = tmp_path / stage / "model"
    final = model_parts(LongAnimationModel.from_pretrained(previous))
    for stage, (part,) in TRAINED.items():
        if stage != "memory":  # reward trains DGLM further
            produced = model_parts(LongAnimationModel.from_pretrained(tmp_path / stage / "model"))[part]
            assert same_weights(final[part], produced), stage


def test_stage_one_copies_the_current_backbone_into_sketchdit(tmp_path):
    """Sec. 3.2.1: SketchDiT starts as the first L blocks of the (here: base-trained) backbone, zero output."""
    model = LongAnimationModel.from_preset("tiny", seed=0)
    with torch.no_grad():
        for parameter in model.backbone.transformer.parameters():
            parameter.add_(0.01)
    config = load_config(write_config(tmp_path / "config.yaml"), stage="sketchdit", output=str(tmp_path / "out"))
    stage = SketchDiTStage(model, config)
    backbone = model.backbone.transformer.state_dict()
    for name, tensor in stage.sketch_dit.state_dict().items():
        assert torch.equal(tensor, backbone[name]) if name in backbone else not tensor.any(), name
    assert [name for name, _ in stage.named_children()] == ["sketch_dit"]


def test_stage_one_with_train_backbone_trains_sketchdit_and_the_transformer(initial_model, tmp_path):
    """``sketchdit.train_backbone``: the backbone transformer trains beside SketchDiT, nothing else moves."""
    config = write_config(tmp_path / "config.yaml", sketchdit={"train_backbone": True})
    assert train(config, "sketchdit", tmp_path / "run") == 0
    trained = LongAnimationModel.from_pretrained(tmp_path / "run" / "model")
    for name, part in model_parts(trained).items():
        unchanged = same_weights(part, model_parts(initial_model)[name])
        assert unchanged == (name not in {"sketch_dit", "transformer"}), name
    weights = load_file(tmp_path / "run" / "checkpoints" / "step-2" / "trainable.safetensors")
    assert {name.split(".")[0] for name in weights} == {"sketch_dit", "transformer"}


def test_folder_clips_train(tmp_path):
    """Real-clip folders (here: rendered toon frames written as PNG folders) feed the stages too."""
    from longanimation.data.toon import ToonConfig, ToonWorld
    from longanimation.data.video_io import write_png_folder

    for seed in (0, 1):
        world = ToonWorld(ToonConfig(seed=seed, frames=20, height=32, width=32))
        write_png_folder(tmp_path / "clips" / f"shot{seed}", np.stack([world.render(t).color for t in range(20)]))
    data = {"source": "folder", "root": str(tmp_path / "clips"), "min_clip_frames": 20, "segment_frames": 9,
            "history_frames": 4, "height": 32, "width": 32, "num_clips": 4}  # fmt: skip
    config = write_config(tmp_path / "config.yaml", max_steps=1, data=data)
    assert train(config, "memory", tmp_path / "run") == 0
    assert len(read_log(tmp_path / "run")) == 1


def test_resume_continues_exactly(tmp_path):
    config = write_config(tmp_path / "config.yaml", max_steps=4)
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert train(config, "sketchdit", straight) == 0

    assert train(config, "sketchdit", resumed, "--max-steps", "2") == 0
    assert sorted(path.name for path in (resumed / "checkpoints").iterdir()) == ["step-1", "step-2"]
    (resumed / "checkpoints" / "step-3").mkdir()  # an interrupted write: no state.json, never picked
    assert train(config, "sketchdit", resumed) == 2  # refuses to start over an existing run
    assert train(config, "sketchdit", resumed, "--resume") == 0

    for name in ("trainable.safetensors", "optimizer.safetensors"):
        first = load_file(straight / "checkpoints" / "step-4" / name)
        second = load_file(resumed / "checkpoints" / "step-4" / name)
        assert first.keys() == second.keys()
        assert all(torch.equal(first[key], second[key]) for key in first), name
    assert sorted(path.name for path in (resumed / "checkpoints").iterdir()) == ["step-3", "step-4"]
    assert [row["loss"] for row in read_log(resumed)] == [row["loss"] for row in read_log(straight)]
    a = LongAnimationModel.from_pretrained(straight / "model").sketch_dit
    b = LongAnimationModel.from_pretrained(resumed / "model").sketch_dit
    assert same_weights(a, b)


DRIVER = """
import json, sys
from longanimation.cli.app import main
for args in json.loads(sys.argv[1]):
    code = main(args)
    if code:
        sys.exit(code)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_processes_keep_identical_replicas_and_resume_exactly(tmp_path):
    """Every stage under ``accelerate launch`` with 2 CPU processes (DDP over gloo), in one launch."""
    config = write_config(tmp_path / "config.yaml")
    def run(stage: str, output: str) -> list[str]:
        return ["train", "--config", str(config), "--stage", stage, "--output", str(tmp_path / output), "--quiet"]

    runs = [run(stage, stage) for stage in STAGES]
    runs += [[*run("sketchdit", "resumed"), "--max-steps", "1"], [*run("sketchdit", "resumed"), "--resume"]]
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    command = [
        sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch",
        "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--main_process_port", str(free_port()),
        "--mixed_precision", "no", "--dynamo_backend", "no", str(driver), json.dumps(runs),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]

    for stage in STAGES:
        replicas = json.loads((tmp_path / stage / "replicas.json").read_text())
        assert len(replicas["sha256"]) == 2 and replicas["identical"], stage
        state = json.loads((tmp_path / stage / "checkpoints" / "step-2" / "state.json").read_text())
        assert (state["world_size"], state["samples_consumed"]) == (2, 4)
        assert (tmp_path / stage / "checkpoints" / "step-2" / "rng-rank1.json").is_file()
    straight = load_file(tmp_path / "sketchdit" / "checkpoints" / "step-2" / "trainable.safetensors")
    again = load_file(tmp_path / "resumed" / "checkpoints" / "step-2" / "trainable.safetensors")
    assert all(torch.equal(straight[key], again[key]) for key in straight)


def test_reward_stage_raises_the_mean_reward(tmp_path):
    """Stage 3 on the tiny preset: eq. 2 with the reward of eq. 5 raises the mean reward on a fixed clip."""
    data = {
        "world_seeds": [3],
        "world_frames": 60,
        "segment_frames": 3,  # the tiny VAE keeps every frame: few latents keep the policy ratio in range
        "history_frames": 16,
        "min_history_frames": 8,
        "height": 32,
        "width": 32,
        "num_clips": 1,
    }
    config = write_config(
        tmp_path / "config.yaml",
        max_steps=30,
        checkpoint_every=30,
        data=data,
        optimizer={"lr": 1.0e-3, "weight_decay": 0.0},
        reward={"samples_per_clip": 4, "num_inference_steps": 4},
    )
    assert train(config, "reward", tmp_path / "run") == 0
    rewards = [float(row["reward_mean"]) for row in read_log(tmp_path / "run")]
    assert len(rewards) == 30
    assert np.mean(rewards[-10:]) > np.mean(rewards[:10]) + 1.0


def test_processes_get_disjoint_deterministic_clips():
    order = ClipOrder(10, seed=3, shuffle=True)
    first = [order.micro_batch(0, micro, rank, 2, 2) for micro in range(2) for rank in range(2)]
    assert sorted(sum(first, [])) == sorted(set(sum(first, [])))  # no clip twice within a pass
    assert first == [ClipOrder(10, seed=3, shuffle=True).micro_batch(0, m, r, 2, 2) for m in range(2) for r in range(2)]
    assert sorted(order[p] for p in range(10)) == list(range(10))
    assert [order[p] for p in range(10)] != [order[p] for p in range(10, 20)]  # reshuffled per epoch
    assert [ClipOrder(5, 0, shuffle=False)[p] for p in range(7)] == [0, 1, 2, 3, 4, 0, 1]


def test_config_loading(tmp_path):
    optimizer = {"lr": "1e-5", "schedule": "cosine", "warmup_steps": 2}
    path = write_config(tmp_path / "config.yaml", max_steps=10, optimizer=optimizer)
    config = load_config(path, stage="memory", output=str(tmp_path / "out"))
    assert isinstance(config, TrainConfig) and config.optimizer.lr == 1e-5 and config.stage == "memory"
    assert config.data.world_seeds == (0, 1) and config.reward.samples_per_clip == 2
    factor = lr_factor(config)
    assert [factor(0), factor(1), factor(2)] == [0.5, 1.0, 1.0] and factor(6) == pytest.approx(0.5)
    assert factor(10) == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"optimiser": {"lr": 1.0}}, "unknown key(s) optimiser"),
        ({"data": {"frames": 9}}, "data: unknown key(s) frames"),
        ({"max_steps": "many"}, "max_steps: expected an integer"),
        ({"data": {"segment_frames": 0}}, "segment_frames must be at least 1"),
        ({"model": {"preset": "tiny", "init_from": "x"}}, "exactly one of init_from"),
        ({"diffusion": {"min_timestep": 500, "max_timestep": 400}}, "0 <= min_timestep < max_timestep"),
        ({"diffusion": {"max_timestep": 5000}}, "do not fit the scheduler's 1000"),
        ({"diffusion": {"object_loss_weight": 0.5}}, "object_loss_weight must be at least 1"),
        ({"diffusion": {"object_loss_weight": 4}, "data": {"source": "folder", "root": "x"}}, "needs toon worlds"),
        ({"data": {"weighted_objects": "most"}}, "data.weighted_objects must be one of all, memory"),
    ],
)
def test_bad_config_is_one_line(change, message, tmp_path, capsys):
    config = write_config(tmp_path / "config.yaml", **change)
    assert train(config, "sketchdit", tmp_path / "out") == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


def test_diffusion_timesteps_stay_in_the_configured_range():
    clean = torch.zeros(64, 2, 4, 2, 2)
    generator = torch.Generator().manual_seed(0)
    _, timesteps = draw_noise(clean, 1000, generator, DiffusionConfig(min_timestep=900))
    assert timesteps.min() >= 900 and timesteps.max() <= 999 and len(timesteps.unique()) > 10
    _, full = draw_noise(clean, 1000, generator, DiffusionConfig())
    assert full.min() < 900


def test_object_weights_follow_the_latent_grid():
    mask = torch.zeros(1, 9, 8, 8)
    mask[:, :, :4, :4] = 1.0  # the top-left quarter, every frame
    mask[:, 5] = 1.0  # frame 5 entirely
    same = latent_weights(mask, 9, (4, 4), 5.0)
    assert same.shape == (1, 9, 1, 4, 4)
    assert same[0, 0, 0, 0, 0] == 5.0 and same[0, 0, 0, 3, 3] == 1.0 and (same[0, 5] == 5.0).all()
    causal = latent_weights(mask, 3, (2, 2), 5.0)  # frame 0 alone, then frames 1-4 and 5-8
    assert causal.shape == (1, 3, 1, 2, 2)
    assert causal[0, :, 0, 0, 0].tolist() == [5.0, 5.0, 5.0]
    assert causal[0, :, 0, 1, 1].tolist() == [1.0, 1.0, 2.0]  # a quarter of frames 5-8 is frame 5
    with pytest.raises(ValueError, match="do not map onto"):
        latent_weights(mask, 4, (2, 2), 5.0)


def test_weighted_loss_is_a_weighted_mean():
    from diffusers import CogVideoXDDIMScheduler

    scheduler = CogVideoXDDIMScheduler(prediction_type="v_prediction")
    generator = torch.Generator().manual_seed(0)
    clean, noise, prediction = (torch.randn(2, 4, 3, 2, 2, generator=generator) for _ in range(3))
    timesteps = torch.tensor([10, 900])
    plain = v_prediction_loss(scheduler, prediction, clean, noise, timesteps, 1)
    ones = torch.ones(2, 3, 1, 2, 2)
    assert v_prediction_loss(scheduler, prediction, clean, noise, timesteps, 1, ones) == pytest.approx(plain.item())
    only_first = torch.zeros(2, 3, 1, 2, 2)
    only_first[0] = 1.0
    target = scheduler.get_velocity(clean, noise, timesteps)
    expected = (prediction[0, 1:] - target[0, 1:]).square().mean()
    weighted = v_prediction_loss(scheduler, prediction, clean, noise, timesteps, 1, only_first)
    assert weighted.item() == pytest.approx(expected.item(), rel=1e-6)


def test_object_weighted_stage_one_trains(tmp_path):
    config = write_config(tmp_path / "config.yaml", diffusion={"object_loss_weight": 8.0})
    assert train(config, "sketchdit", tmp_path / "out") == 0
    assert len(read_log(tmp_path / "out")) == 2


def test_bad_invocations_are_one_line(tmp_path, capsys):
    config = write_config(tmp_path / "config.yaml")
    assert train(tmp_path / "missing.yaml", "sketchdit", tmp_path / "out") == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["train", "--config", str(config), "--output", str(tmp_path / "out")]) == 2
    assert "no stage" in capsys.readouterr().err
    assert train(config, "colour", tmp_path / "out") == 2
    error = capsys.readouterr().err
    assert "unknown stage 'colour'" in error and error.count("\n") == 1

    pickled = tmp_path / "pickled"
    pickled.mkdir()
    torch.save({"weight": torch.zeros(1)}, pickled / "model.pt")
    for init in (pickled, pickled / "model.pt"):
        config = write_config(tmp_path / "config.yaml", model={"init_from": str(init)})
        assert train(config, "sketchdit", tmp_path / "out") == 2
        error = capsys.readouterr().err
        assert "pickle" in error and error.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_shipped_configs_load():
    from accelerate.commands.config.config_args import load_config_from_file

    repo = Path(__file__).resolve().parents[1]
    root = repo / "configs"
    script = (repo / "scripts" / "train_tiny.sh").read_text()
    chain = re.search(r"for stage in ([a-z0-9 -]+); do", script).group(1).split()
    names = sorted(path.stem for path in (root / "train").glob("*.yaml"))
    assert names == sorted([f"tiny-{link}" for link in chain] + ["paper-sketchdit", "paper-memory", "paper-reward"])
    assert {load_config(root / "train" / f"tiny-{link}.yaml").stage for link in chain} == set(STAGES)
    for experiment in (root / "experiments").glob("*.yaml"):  # runs beside the chain: they load too
        assert load_config(experiment).output == f"runs/{experiment.stem}"
    previous = None
    for link in chain:  # each link starts from the model the previous one wrote
        config = load_config(root / "train" / f"tiny-{link}.yaml")
        assert config.output == f"runs/tiny-{link}" and link.startswith(config.stage)
        assert config.model.init_from == (f"runs/tiny-{previous}/model" if previous else None)
        assert (config.model.preset == "tiny") == (previous is None)
        previous = link
    for name in names:
        assert load_config(root / "train" / f"{name}.yaml").output == f"runs/{name}"
    kinds = {name: load_config_from_file(str(root / "accelerate" / f"{name}.yaml")) for name in ("ddp", "fsdp")}
    zero2 = load_config_from_file(str(root / "accelerate" / "zero2.yaml"))
    assert kinds["ddp"].distributed_type == "MULTI_GPU" and kinds["fsdp"].distributed_type == "FSDP"
    assert zero2.fsdp_config["fsdp_sharding_strategy"] == "SHARD_GRAD_OP"


def test_paper_only_stages_refuse_pretrained_parts_stages(tmp_path, capsys, initial_model, monkeypatch):
    folder = tmp_path / "model"
    initial_model.save_pretrained(folder, include_backbone=True)
    # A real paper folder is too large for a test: a loaded model that says it is one stands in
    # (a folder whose index merely claims "paper" is refused on load, by its shapes).
    paper = copy.copy(initial_model)
    paper.preset = "paper"
    monkeypatch.setattr(LongAnimationModel, "from_pretrained", classmethod(lambda cls, *a, **k: paper))
    config = write_config(tmp_path / "config.yaml", model={"init_from": str(folder)})
    assert train(config, "vae", tmp_path / "out") == 2
    assert "tiny preset only" in capsys.readouterr().err


def test_data_config_carries_every_clip_config_field():
    import dataclasses

    from longanimation.data.clips import ClipConfig
    from longanimation.training.config import DataConfig

    assert {f.name for f in dataclasses.fields(ClipConfig)} <= {f.name for f in dataclasses.fields(DataConfig)}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"height": 36}, "data.height (after cropping) must be a multiple of 8"),
        ({"crop_width": 20}, "data.width (after cropping) must be a multiple of 8"),
    ],
)
def test_sizes_the_model_cannot_take_are_one_line(data, message, tmp_path, capsys):
    base = yaml.safe_load(write_config(tmp_path / "base.yaml").read_text())["data"]
    config = write_config(tmp_path / "config.yaml", data=base | data)
    assert train(config, "vae", tmp_path / "out") == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_paper_vae_layout_needs_4k_plus_1_frames():
    from longanimation.errors import UserError
    from longanimation.training.config import DataConfig, check_against_model

    check_against_model(DataConfig(segment_frames=81, height=576, width=1024), 4, 16)
    with pytest.raises(UserError, match="segment_frames must be 4k \\+ 1 for this model's VAE, got 7"):
        check_against_model(DataConfig(segment_frames=7, height=576, width=1024), 4, 16)


@torch.no_grad()
def test_inflating_time_kernels_keeps_single_frames_and_codes_frames_alone(initial_model):
    import copy

    from longanimation.training.stages.vae import inflate_time_kernels

    vae = copy.deepcopy(initial_model.backbone.vae).eval()
    frame = torch.rand(1, 3, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    before = vae.decode(vae.encode(frame).latent_dist.mean).sample
    assert inflate_time_kernels(vae) > 0
    after = vae.decode(vae.encode(frame).latent_dist.mean).sample
    assert torch.allclose(before, after, atol=1e-5)
    temporal = [m.weight for m in vae.modules() if isinstance(m, torch.nn.Conv3d) and m.weight.shape[2] > 1]
    assert temporal and all(not weight[:, :, :-1].any() for weight in temporal)


def test_decoder_only_vae_keeps_the_latent_space(initial_model, tmp_path):
    """vae.decoder_only + latent_noise: the encoder (the diffusion's latent space) stays, the decoder trains."""
    config = write_config(tmp_path / "config.yaml", vae={"decoder_only": True, "latent_noise": 0.3, "kl_weight": 0.0})
    assert train(config, "vae", tmp_path / "run") == 0
    trained = LongAnimationModel.from_pretrained(tmp_path / "run" / "model").backbone.vae
    assert same_weights(trained.encoder, initial_model.backbone.vae.encoder)
    assert not same_weights(trained.decoder, initial_model.backbone.vae.decoder)
    clean = write_config(tmp_path / "clean.yaml", vae={"decoder_only": True, "latent_noise": 0.0, "kl_weight": 0.0})
    assert train(clean, "vae", tmp_path / "clean") == 0
    without_noise = LongAnimationModel.from_pretrained(tmp_path / "clean" / "model").backbone.vae
    assert not same_weights(trained.decoder, without_noise.decoder)  # the latent noise reached the decoder
