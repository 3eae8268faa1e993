"""Frozen CogVideoX backbone, SketchDiT and the controlled transformer (eq. 3), on the tiny preset."""

from __future__ import annotations

import copy
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from longanimation.errors import UserError
from longanimation.models.backbone import CogVideoXBackbone, latent_frame_padding, rotary_embeddings
from longanimation.models.longanimation_model import LongAnimationModel
from longanimation.models.memory_state import MemoryView
from longanimation.models.presets import get_preset
from longanimation.models.sketch_dit import SketchControlledTransformer, SketchDiT, SketchDiTConfig

LATENT = 16  # 128 px / 8
FRAMES = 5  # latent frames of a 17-frame segment


@pytest.fixture(scope="module")
def model() -> LongAnimationModel:
    return LongAnimationModel.from_preset("tiny", seed=0)


def make_inputs(model: LongAnimationModel, batch: int = 2, seed: int = 0) -> dict:
    """Random inputs in the model's latent sequence layout (reference slot first)."""
    generator = torch.Generator().manual_seed(seed)
    sketch_dit, backbone = model.sketch_dit, model.backbone
    frames = FRAMES + sketch_dit.num_leading_frames(FRAMES)

    def noise(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator)

    return {
        "noisy_latents": noise(batch, frames, 16, LATENT, LATENT),
        "image_latents": backbone.image_latents_padded(noise(batch, 1, 16, LATENT, LATENT), frames),
        "sketch_latents": sketch_dit.arrange_sketch_latents(
            noise(batch, FRAMES, 16, LATENT, LATENT), noise(batch, 1, 16, LATENT, LATENT)
        ),
        "text_embeds": noise(batch, backbone.max_text_length, 64),
        "timestep": torch.tensor([999, 250])[:batch],
    }


def plain_backbone(model: LongAnimationModel, inputs: dict) -> torch.Tensor:
    transformer = model.backbone.transformer
    _, frames, _, height, width = inputs["noisy_latents"].shape
    return transformer(
        hidden_states=torch.cat([inputs["noisy_latents"], inputs["image_latents"]], dim=2),
        encoder_hidden_states=inputs["text_embeds"],
        timestep=inputs["timestep"],
        ofs=model.backbone.ofs(),
        image_rotary_emb=rotary_embeddings(transformer.config, frames, height, width),
        return_dict=False,
    )[0]


def memory_views(model: LongAnimationModel, batch: int = 2) -> dict:
    config = model.memory_model.config
    keys = tuple(torch.randn(batch, 6, config.kv_width) for _ in config.memory_layers)
    values = tuple(torch.randn(batch, 6, config.kv_width) for _ in config.memory_layers)
    return {"global_view": MemoryView(keys, values), "local_view": MemoryView(keys, values)}


@torch.no_grad()
def test_controlled_model_equals_backbone_at_init(model):
    inputs = make_inputs(model)
    expected = plain_backbone(model, inputs)
    denoiser = model.denoiser()
    assert torch.equal(denoiser(**inputs), expected)
    assert torch.equal(denoiser(**inputs, memory=memory_views(model)), expected)
    assert all(not block._forward_hooks for block in model.backbone.transformer.transformer_blocks)


@torch.no_grad()
def test_injection_adds_gamma_s_after_every_second_block(model):
    sketch_dit = SketchDiT.from_backbone(model.backbone.transformer, model.sketch_dit.config)
    torch.nn.init.constant_(sketch_dit.out_projection.bias, 0.25)  # S = 0.25 everywhere
    denoiser = SketchControlledTransformer(model.backbone.transformer, sketch_dit)
    blocks = model.backbone.transformer.transformer_blocks
    assert denoiser.injected_blocks == [1, 3, 5]
    seen = {}
    handles = [
        block.register_forward_pre_hook(lambda m, a, kw, i=i: seen.__setitem__(i, kw), with_kwargs=True)
        for i, block in enumerate(blocks)
    ]
    try:
        denoiser(**make_inputs(model))
    finally:
        for handle in handles:
            handle.remove()
    gamma = sketch_dit.config.gamma
    for index in range(len(blocks) - 1):
        vision = blocks[index](**seen[index])[0]
        added = gamma * 0.25 if index in denoiser.injected_blocks else 0.0
        torch.testing.assert_close(seen[index + 1]["hidden_states"], vision + added)


def test_sketch_dit_starts_as_first_backbone_blocks(model):
    sketch_dit, transformer = model.sketch_dit, model.backbone.transformer
    assert len(sketch_dit.transformer_blocks) == sketch_dit.config.num_layers == 2
    backbone_state = transformer.state_dict()
    for name, tensor in sketch_dit.state_dict().items():
        if name.startswith("out_projection."):
            assert not tensor.any()
        else:
            assert torch.equal(tensor, backbone_state[name]), name
    assert sketch_dit.patch_embed.proj.in_features == 32 * 2 * 2 * 2  # [sketch | reference] x patch 2x2x2


def train_sketchdit_only(model: LongAnimationModel) -> list[torch.nn.Parameter]:
    """Stage 1's set-up: SketchDiT trains, everything else frozen; returns the trained parameters."""
    from longanimation.training.config import ModelConfig, SketchDiTStageConfig, TrainConfig
    from longanimation.training.stages import STAGES

    config = TrainConfig(
        stage="sketchdit", model=ModelConfig(preset="tiny"), sketchdit=SketchDiTStageConfig(init_from_backbone=False)
    )
    stage = STAGES["sketchdit"](model, config)
    stage.freeze_all_but_trained()
    return [parameter for parameter in stage.parameters() if parameter.requires_grad]


def test_training_step_updates_only_trainable_parts():
    model = LongAnimationModel.from_preset("tiny", seed=1)
    trainable = train_sketchdit_only(model)
    optimizer = torch.optim.AdamW(trainable, lr=1e-3)
    denoiser = model.denoiser()
    assert not model.backbone.transformer.training and model.sketch_dit.training
    inputs = make_inputs(model)
    loss = torch.nn.functional.mse_loss(denoiser(**inputs), torch.randn_like(inputs["noisy_latents"]))
    loss.backward()
    optimizer.step()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.grad is None for p in (*model.dglm.parameters(), *model.memory_model.parameters()))
    assert all(p.grad is not None for p in model.sketch_dit.parameters())
    assert model.sketch_dit.out_projection.weight.grad.abs().sum() > 0
    assert model.sketch_dit.out_projection.weight.abs().sum() > 0  # moved off zero
    assert {id(p) for p in trainable} == {id(p) for p in model.sketch_dit.parameters()}


def test_gradient_checkpointing_gives_same_gradients():
    model = LongAnimationModel.from_preset("tiny", seed=2)
    torch.nn.init.normal_(model.sketch_dit.out_projection.weight, std=0.02)
    train_sketchdit_only(model)
    inputs = make_inputs(model, batch=1)
    grads = []
    for checkpointing in (False, True):
        model.sketch_dit.gradient_checkpointing = checkpointing
        model.sketch_dit.zero_grad(set_to_none=True)
        model.denoiser()(**inputs).square().mean().backward()
        grads.append([p.grad.clone() for p in model.sketch_dit.parameters()])
    for plain, recomputed in zip(*grads):
        torch.testing.assert_close(plain, recomputed)


def test_latent_layout():
    tiny = SketchDiT(get_preset("tiny").sketch_dit)
    assert [tiny.num_leading_frames(t) for t in (5, 4, 1)] == [1, 2, 1]
    with torch.device("meta"):
        paper = SketchDiT(get_preset("paper").sketch_dit)
    assert paper.num_leading_frames(21) == 1  # 81 frames -> 22 latent frames, as the official pipeline
    assert latent_frame_padding(21, 2) == 1 and latent_frame_padding(20, 2) == 0
    no_slot = SketchDiT(SketchDiTConfig(**{**vars(tiny.config), "reference_sketch_slot": False}))
    assert [no_slot.num_leading_frames(t) for t in (5, 4)] == [1, 0]

    sketches, reference = torch.randn(1, 4, 16, 2, 2), torch.randn(1, 1, 16, 2, 2)
    arranged = tiny.arrange_sketch_latents(sketches, reference)
    assert arranged.shape[1] == 6
    assert torch.equal(arranged[:, :2], reference.expand(-1, 2, -1, -1, -1))
    assert torch.equal(arranged[:, 2:], sketches)
    assert torch.equal(no_slot.arrange_sketch_latents(sketches), sketches)
    with pytest.raises(ValueError, match="reference"):
        tiny.arrange_sketch_latents(sketches)

    padded = CogVideoXBackbone.image_latents_padded(reference, 6)
    assert padded.shape == (1, 6, 16, 2, 2)
    assert torch.equal(padded[:, :1], reference) and not padded[:, 1:].any()


@torch.no_grad()
def test_vae_and_text_helpers(model):
    backbone = model.backbone
    video = torch.rand(1, 3, 17, 64, 64) * 2 - 1
    latents = backbone.encode_video(video)
    side = 64 // backbone.spatial_compression
    assert backbone.spatial_compression == 4 and backbone.temporal_compression == 1  # the tiny VAE
    assert latents.shape == (1, 17, 16, side, side)
    assert backbone.decode_latents(latents).shape == (1, 3, 17, 64, 64)
    paper_layout = copy.deepcopy(backbone)
    paper_layout.vae.register_to_config(temporal_compression_ratio=4)
    assert paper_layout.num_latent_frames(17) == 5
    with pytest.raises(ValueError, match="4k"):
        paper_layout.num_latent_frames(16)
    assert backbone.encode_reference_image(video[:, :, 0]).shape == (1, 1, 16, side, side)
    text = backbone.encode_prompt(["a red robot and a blue cat walk through a town at dusk", "a frog"])
    assert text.shape == (2, 32, 64)
    assert backbone.scheduler.config.prediction_type == "v_prediction"


def test_backbone_is_frozen(model):
    backbone = model.backbone
    backbone.train()
    assert not backbone.training and not backbone.transformer.training
    assert not any(p.requires_grad for p in backbone.parameters())


def test_backbone_folder_round_trip(model, tmp_path):
    folder = tmp_path / "cogvideox"
    model.backbone.save_pretrained(folder)
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "CogVideoXImageToVideoPipeline"
    loaded = CogVideoXBackbone.from_pretrained(folder)
    for part in ("transformer", "vae", "text_encoder"):
        original, reloaded = getattr(model.backbone, part).state_dict(), getattr(loaded, part).state_dict()
        assert original.keys() == reloaded.keys()
        assert all(torch.equal(original[name], reloaded[name]) for name in original), part
    prompt = ["a pink dragon flies over the castle"]
    assert loaded.tokenizer(prompt).input_ids == model.backbone.tokenizer(prompt).input_ids
    assert type(loaded.scheduler).__name__ == "CogVideoXDPMScheduler"
    assert not any(p.requires_grad for p in loaded.parameters())


def test_backbone_folder_errors(model, tmp_path):
    folder = tmp_path / "cogvideox"
    model.backbone.save_pretrained(folder)

    broken = tmp_path / "no_vae"
    shutil.copytree(folder, broken)
    shutil.rmtree(broken / "vae")
    with pytest.raises(UserError, match="vae/ is missing"):
        CogVideoXBackbone.from_pretrained(broken)

    pickled = tmp_path / "pickled"
    shutil.copytree(folder, pickled)
    weights = pickled / "transformer" / "diffusion_pytorch_model.safetensors"
    torch.save(load_file(weights), pickled / "transformer" / "diffusion_pytorch_model.bin")
    weights.unlink()
    with pytest.raises(UserError, match="pickle") as error:
        CogVideoXBackbone.from_pretrained(pickled)
    assert "\n" not in str(error.value)

    for part, file in (("transformer", "diffusion_pytorch_model.safetensors"), ("text_encoder", "model.safetensors")):
        misshaped = tmp_path / f"misshaped_{part}"
        shutil.copytree(folder, misshaped)
        state = load_file(misshaped / part / file)
        name = sorted(key for key in state if key.endswith("weight") and state[key].ndim == 2)[0]
        state[name] = torch.zeros(3, 3)
        save_file(state, misshaped / part / file)
        with pytest.raises(UserError, match=name.replace(".", r"\.")) as error:
            CogVideoXBackbone.from_pretrained(misshaped)
        assert "\n" not in str(error.value)

    missing = tmp_path / "missing"
    shutil.copytree(folder, missing)
    state = load_file(missing / "vae" / "diffusion_pytorch_model.safetensors")
    del state["decoder.conv_out.conv.weight"]
    save_file(state, missing / "vae" / "diffusion_pytorch_model.safetensors")
    with pytest.raises(UserError, match=r"missing: decoder\.conv_out\.conv\.weight"):
        CogVideoXBackbone.from_pretrained(missing)
