"""convert-official: the release's files (synthetic, tiny widths, the authors' key names) run as they were trained.

The references below are written from the authors' code on their raw tensors:
Controled_CogVideoXTransformer3DModel (``+ 0.5 * S`` after blocks ``i % 2 == 0``),
Control3DModel (blocks, then ``zero_conv``), global_local_memory (eq. 4,
``S' = S + DGLM(G, L, S)``) and Video-XL's beacon loop (sink, interleaved
beacons with their own q/k/v, windows, the prompt's tail read last).
"""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from diffusers import CogVideoXTransformer3DModel
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoTokenizer, CLIPVisionModel, PreTrainedTokenizerFast

from longanimation.cli.app import main
from longanimation.cli.colorize import DEFAULT_MODEL
from longanimation.models.backbone import OFS_VALUE, rotary_embeddings
from longanimation.models.longanimation_model import LongAnimationModel
from longanimation.models.memory_model import CLIP_MEAN, CLIP_STD
from longanimation.models.memory_state import MemoryView
from longanimation.models.presets import TINY_TRANSFORMER, get_preset, official

TINY = official(get_preset("tiny"))
BACKBONE = DEFAULT_MODEL / "backbone"
WIDTH = TINY.sketch_dit.inner_dim  # 128
MEMORY = TINY.memory_model
HIDDEN, KV, LAYERS = MEMORY.hidden_size, MEMORY.kv_width, MEMORY.num_layers
VISION = "model.vision_tower.vision_tower.vision_model."
WORDS = ["<unk>", "system", "user", "assistant", "You", "are", "a", "helpful", "describe", "color", "anime"]
WORDS += ["scene", "Can", "you", "the", "and"]  # 16 = the tiny LM's vocabulary


class Random:
    def __init__(self, seed: int) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, *shape: int, scale: float | None = None) -> torch.Tensor:
        scale = 1 / math.sqrt(shape[-1]) if scale is None else scale
        return torch.randn(*shape, generator=self.generator) * scale

    def norm(self, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        return 1 + self(width, scale=0.1), self(width, scale=0.1)


def their_control(rand: Random) -> dict[str, torch.Tensor]:
    """Control3DModel's state: the backbone's embeddings and blocks by the backbone's names, then zero_conv."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        transformer = CogVideoXTransformer3DModel(**TINY_TRANSFORMER | {"num_layers": TINY.sketch_dit.num_layers})
    kept = ("patch_embed.", "time_embedding.", "ofs_embedding.", "transformer_blocks.")
    state = {name: tensor for name, tensor in transformer.state_dict().items() if name.startswith(kept)}
    return state | {"zero_conv.weight": rand(WIDTH, WIDTH, scale=0.05)}


def their_glm(rand: Random) -> dict[str, torch.Tensor]:
    """global_local_memory's state at tiny widths (3 layers, 4 heads, projector 32 -> 64 -> 96 -> 128)."""
    hidden = TINY.dglm.projector_hidden
    state = {"proj_out": rand(WIDTH, WIDTH, scale=0.05)}
    for m in range(3):
        attn, ffn = f"layers.{m}.0.", f"layers.{m}.1."
        for norm in (f"{attn}norm1", f"{attn}norm2", f"{ffn}0"):
            state[f"{norm}.weight"], state[f"{norm}.bias"] = rand.norm(WIDTH)
        for name in ("to_q", "to_k", "to_v", "to_out"):
            state[f"{attn}{name}.weight"] = rand(WIDTH, WIDTH)
        state[f"{ffn}1.weight"], state[f"{ffn}3.weight"] = rand(4 * WIDTH, WIDTH), rand(WIDTH, 4 * WIDTH)
        for kind in ("key", "value"):
            widths = (KV, *hidden, WIDTH)
            for index, (width_in, width) in enumerate(zip(widths, widths[1:])):
                state[f"{kind}_mapping_{m}.{3 * index}.weight"] = rand(width, width_in)
                state[f"{kind}_mapping_{m}.{3 * index}.bias"] = rand(width, scale=0.1)
                if index < len(hidden):
                    norm = f"{kind}_mapping_{m}.{3 * index + 1}"
                    state[f"{norm}.weight"], state[f"{norm}.bias"] = rand.norm(width)
    return state


def their_video_xl(rand: Random) -> dict[str, torch.Tensor]:
    """LlavaQwenForCausalLM's state (HF names, Video-XL's beacon extras) at the tiny memory model's widths."""
    vision, inner = MEMORY.vision_hidden_size, MEMORY.vision_intermediate_size
    patches = (MEMORY.image_size // MEMORY.patch_size) ** 2
    state = {
        "model.embed_tokens.weight": rand(MEMORY.vocab_size, HIDDEN, scale=1.0),
        "model.norm.weight": rand.norm(HIDDEN)[0],
        "model.beacon_embed_tokens.weight": rand(1, HIDDEN, scale=1.0),
        "lm_head.weight": rand(MEMORY.vocab_size, HIDDEN),
        "model.mm_projector.0.weight": rand(HIDDEN, vision),
        "model.mm_projector.0.bias": rand(HIDDEN, scale=0.1),
        "model.mm_projector.2.weight": rand(HIDDEN, HIDDEN),
        "model.mm_projector.2.bias": rand(HIDDEN, scale=0.1),
        VISION + "embeddings.class_embedding": rand(vision, scale=1.0),
        VISION + "embeddings.patch_embedding.weight": rand(vision, 3, MEMORY.patch_size, MEMORY.patch_size, scale=0.1),
        VISION + "embeddings.position_embedding.weight": rand(patches + 1, vision, scale=0.1),
    }
    for norm in ("pre_layrnorm", "post_layernorm"):
        state[f"{VISION}{norm}.weight"], state[f"{VISION}{norm}.bias"] = rand.norm(vision)
    for i in range(MEMORY.vision_layers):
        layer = f"{VISION}encoder.layers.{i}."
        for name, (rows, cols) in {
            "self_attn.q_proj": (vision, vision),
            "self_attn.k_proj": (vision, vision),
            "self_attn.v_proj": (vision, vision),
            "self_attn.out_proj": (vision, vision),
            "mlp.fc1": (inner, vision),
            "mlp.fc2": (vision, inner),
        }.items():
            state[f"{layer}{name}.weight"], state[f"{layer}{name}.bias"] = rand(rows, cols), rand(rows, scale=0.1)
        for norm in ("layer_norm1", "layer_norm2"):
            state[f"{layer}{norm}.weight"], state[f"{layer}{norm}.bias"] = rand.norm(vision)
    for i in range(LAYERS):
        layer = f"model.layers.{i}."
        for name, rows in (("q_proj", HIDDEN), ("k_proj", KV), ("v_proj", KV)):
            for own in ("", "beacon_"):
                state[f"{layer}self_attn.{own}{name}.weight"] = rand(rows, HIDDEN)
                state[f"{layer}self_attn.{own}{name}.bias"] = rand(rows, scale=0.1)
        state[f"{layer}self_attn.o_proj.weight"] = rand(HIDDEN, HIDDEN)
        state[f"{layer}mlp.gate_proj.weight"] = rand(MEMORY.intermediate_size, HIDDEN)
        state[f"{layer}mlp.up_proj.weight"] = rand(MEMORY.intermediate_size, HIDDEN)
        state[f"{layer}mlp.down_proj.weight"] = rand(HIDDEN, MEMORY.intermediate_size)
        state[f"{layer}input_layernorm.weight"] = rand.norm(HIDDEN)[0]
        state[f"{layer}post_attention_layernorm.weight"] = rand.norm(HIDDEN)[0]
    return state


VIDEO_XL_CONFIG = {
    "architectures": ["LlavaQwenForCausalLM"],
    "model_type": "llava_qwen",
    "hidden_size": HIDDEN,
    "num_hidden_layers": LAYERS,
    "num_attention_heads": MEMORY.num_heads,
    "num_key_value_heads": MEMORY.num_kv_heads,
    "intermediate_size": MEMORY.intermediate_size,
    "vocab_size": MEMORY.vocab_size,
    "rope_theta": MEMORY.rope_theta,
    "rms_norm_eps": MEMORY.rms_norm_eps,
    "hidden_act": "silu",
    "mm_vision_tower": "openai/clip-vit-large-patch14-336",
    "mm_vision_select_layer": -2,
    "mm_vision_select_feature": "patch",
    "mm_projector_type": "mlp2x_gelu",
    "mm_spatial_pool_stride": 2,
    "mm_spatial_pool_mode": "average",
    "beacon_window": 2 * MEMORY.tokens_per_frame,  # 2 frames a window (the real one: 1440 tokens = 10 frames)
    "beacon_stride": 2 * MEMORY.tokens_per_frame,
    "beacon_attn": "full-coverage",
    "beacon_pos": "interleave",
    "beacon_param": ["q", "k", "v"],
    "beacon_ratio": [2, 4, 8],
    "beacon_sink_size": 0,
    "beacon_accum": True,
}


def write_video_xl(folder, state, config=VIDEO_XL_CONFIG):
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    tokenizer = Tokenizer(models.WordLevel({word: i for i, word in enumerate(WORDS)}, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>").save_pretrained(folder)
    names = sorted(state)
    half = len(names) // 2  # two shards, as a 7B checkpoint comes
    save_file({name: state[name] for name in names[:half]}, str(folder / "model-00001-of-00002.safetensors"))
    save_file({name: state[name] for name in names[half:]}, str(folder / "model-00002-of-00002.safetensors"))


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """The release's three parts on disk, their tensors, and the converted folder."""
    root = tmp_path_factory.mktemp("release")
    rand = Random(0)
    tensors = {"control": their_control(rand), "glm": their_glm(rand), "videoxl": their_video_xl(rand)}
    save_file(tensors["control"], str(root / "control_module.safetensors"))
    save_file(tensors["glm"], str(root / "glm_module.safetensors"))
    write_video_xl(root / "Video-XL", tensors["videoxl"])
    out = root / "converted"
    assert main(convert_args(root) + [str(out)]) == 0
    return root, tensors, out


def convert_args(root, **replace) -> list[str]:
    paths = {
        "--cogvideox": BACKBONE,
        "--control": root / "control_module.safetensors",
        "--glm": root / "glm_module.safetensors",
        "--videoxl": root / "Video-XL",
    } | {f"--{key}": value for key, value in replace.items()}
    return ["convert-official", *(str(item) for pair in paths.items() for item in pair)]


@pytest.fixture(scope="module")
def converted(release):
    return LongAnimationModel.from_pretrained(release[2]).eval()


def test_every_tensor_lands_where_it_belongs(release):
    _, theirs, out = release
    sketch = load_file(str(out / "sketch_dit" / "model.safetensors"))
    assert len(sketch) == len(theirs["control"])
    for name, tensor in theirs["control"].items():
        assert torch.equal(sketch["out_projection.weight" if name == "zero_conv.weight" else name], tensor)

    dglm = load_file(str(out / "dglm" / "model.safetensors"))
    assert len(dglm) == len(theirs["glm"])
    assert torch.equal(dglm["proj_out.weight"], theirs["glm"]["proj_out"].t())
    for m in range(3):
        pairs = {"0.norm1": "memory_norm", "0.norm2": "norm", "1.0": "ffn_norm"}
        for source, target in pairs.items():
            for kind in ("weight", "bias"):
                assert torch.equal(dglm[f"blocks.{m}.{target}.{kind}"], theirs["glm"][f"layers.{m}.{source}.{kind}"])
        for name in ("to_q", "to_k", "to_v", "to_out"):
            assert torch.equal(dglm[f"blocks.{m}.{name}.weight"], theirs["glm"][f"layers.{m}.0.{name}.weight"])
        assert torch.equal(dglm[f"blocks.{m}.ffn.0.weight"], theirs["glm"][f"layers.{m}.1.1.weight"])
        assert torch.equal(dglm[f"blocks.{m}.ffn.2.weight"], theirs["glm"][f"layers.{m}.1.3.weight"])
        for index in (0, 1, 3, 4, 6):
            for kind in ("key", "value"):
                assert torch.equal(
                    dglm[f"{kind}_projectors.{m}.{index}.weight"], theirs["glm"][f"{kind}_mapping_{m}.{index}.weight"]
                )

    memory = load_file(str(out / "memory_model" / "model.safetensors"))
    assert len(memory) == len(theirs["videoxl"]) - 1  # all but lm_head
    for name, tensor in theirs["videoxl"].items():
        if name == "lm_head.weight":
            continue
        if name == "model.beacon_embed_tokens.weight":
            ours = "summary_embedding"
        elif ".beacon_" in name:
            layer, projection = name.split(".")[2], name.split(".beacon_")[1]
            ours = f"summary_projections.{layer}.{projection}"
        elif name.startswith(VISION):
            ours = "vision." + name[len(VISION) :]
        elif name.startswith("model.mm_projector."):
            ours = "projector." + name[len("model.mm_projector.") :]
        else:
            ours = "lm." + name[len("model.") :]
        assert torch.equal(memory[ours], tensor.reshape(memory[ours].shape)), name

    index = json.loads((out / "longanimation.json").read_text())
    assert index["preset"] == "tiny" and (out / "backbone").resolve() == BACKBONE.resolve()
    config = json.loads((out / "memory_model" / "config.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(release[0] / "Video-XL", local_files_only=True)
    before = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"  # the release's prompt
    after = "\nCan you describe the scene and color in anime?<|im_end|>\n<|im_start|>assistant\n"
    assert config["prompt_prefix"] == tokenizer(before).input_ids and 1 in config["prompt_prefix"]  # "system"
    assert config["prompt_suffix"] == tokenizer(after).input_ids and 8 in config["prompt_suffix"]  # "describe"
    assert config["chunk_sizes"] == [2] and config["compression_ratio"] == 8 and config["summary_projections"]


# ---------------------------------------------------------------- Video-XL, as the release runs it


def rms_norm(x, weight):
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + MEMORY.rms_norm_eps))


def rope(x, positions):
    """Qwen2 RoPE on (heads, n, d) at integer positions (rotate_half layout)."""
    d = x.shape[-1]
    inverse = 1.0 / (MEMORY.rope_theta ** (torch.arange(0, d, 2).float() / d))
    angles = positions[:, None].float() * inverse
    cos, sin = torch.cat([angles, angles], -1).cos(), torch.cat([angles, angles], -1).sin()
    return x * cos + torch.cat([-x[..., d // 2 :], x[..., : d // 2]], -1) * sin


def video_xl_step(W, tokens, beacon, memory):
    """One Memory._step + LM forward: tokens (n, H) after the cached pre-RoPE memory; returns their (K, V) per layer."""
    n, m = tokens.shape[0], memory[0][0].shape[0]
    positions = torch.arange(m + n)
    mask = positions[None] <= positions[m:, None]  # full-coverage: causal, all memory visible
    heads, kv_heads, hidden, out = MEMORY.num_heads, MEMORY.num_kv_heads, tokens, []
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        x = rms_norm(hidden, W[p + "input_layernorm.weight"])

        def project(name, x=x, p=p):  # beacon_param q k v: beacon tokens use their own projections
            plain = F.linear(x, W[f"{p}self_attn.{name}.weight"], W[f"{p}self_attn.{name}.bias"])
            own = F.linear(x, W[f"{p}self_attn.beacon_{name}.weight"], W[f"{p}self_attn.beacon_{name}.bias"])
            return torch.where(beacon[:, None], own, plain)

        q, k, v = project("q_proj"), project("k_proj"), project("v_proj")
        out.append((k, v))
        keys, values = torch.cat([memory[i][0], k]), torch.cat([memory[i][1], v])
        q = rope(q.view(n, heads, -1).transpose(0, 1), positions[m:])
        keys = rope(keys.view(m + n, kv_heads, -1).transpose(0, 1), positions).repeat_interleave(heads // kv_heads, 0)
        values = values.view(m + n, kv_heads, -1).transpose(0, 1).repeat_interleave(heads // kv_heads, 0)
        scores = (q @ keys.transpose(1, 2) / math.sqrt(q.shape[-1])).masked_fill(~mask, float("-inf"))
        mixed = (scores.softmax(-1) @ values).transpose(0, 1).reshape(n, -1)
        hidden = hidden + F.linear(mixed, W[p + "self_attn.o_proj.weight"])
        y = rms_norm(hidden, W[p + "post_attention_layernorm.weight"])
        gate = F.silu(F.linear(y, W[p + "mlp.gate_proj.weight"])) * F.linear(y, W[p + "mlp.up_proj.weight"])
        hidden = hidden + F.linear(gate, W[p + "mlp.down_proj.weight"])
    return out


def video_xl_memory(W, frame_tokens, prefix, suffix, window, ratio=8):
    """past_key_values after Video-XL's generate over [prefix, video, suffix], at our memory layers."""
    embed = W["model.embed_tokens.weight"]
    memory = [(torch.zeros(0, KV), torch.zeros(0, KV))] * LAYERS
    memory = video_xl_step(W, embed[list(prefix)], torch.zeros(len(prefix), dtype=torch.bool), memory)  # sink
    tokens = frame_tokens.flatten(0, 1)
    for start in range(0, len(tokens), window):  # the last window may be shorter: its ratio stays 8
        rows, flags = [], []
        for j, token in enumerate(tokens[start : start + window]):  # interleave: a beacon after every 8 tokens
            rows.append(token)
            flags.append(False)
            if (j + 1) % ratio == 0:
                rows.append(W["model.beacon_embed_tokens.weight"][0])
                flags.append(True)
        flags = torch.tensor(flags)
        step = video_xl_step(W, torch.stack(rows), flags, memory)
        memory = [(torch.cat([mk, k[flags]]), torch.cat([mv, v[flags]])) for (mk, mv), (k, v) in zip(memory, step)]
    step = video_xl_step(W, embed[list(suffix)], torch.zeros(len(suffix), dtype=torch.bool), memory)
    memory = [(torch.cat([mk, k]), torch.cat([mv, v])) for (mk, mv), (k, v) in zip(memory, step)]
    return [memory[layer] for layer in MEMORY.memory_layers]


def video_xl_frame_tokens(W, frames):
    """CLIP hidden_states[-2] patches -> mm_projector (mlp2x_gelu) -> get_2dPool (average, stride 2)."""
    clip = CLIPVisionModel(MEMORY.vision_config()).eval()
    clip.load_state_dict({name[len(VISION) :]: t for name, t in W.items() if name.startswith(VISION)})
    pixels = (frames - torch.tensor(CLIP_MEAN).view(3, 1, 1)) / torch.tensor(CLIP_STD).view(3, 1, 1)
    patches = clip(pixel_values=pixels, output_hidden_states=True).hidden_states[-2][:, 1:]
    x = F.linear(patches, W["model.mm_projector.0.weight"], W["model.mm_projector.0.bias"])
    x = F.linear(F.gelu(x), W["model.mm_projector.2.weight"], W["model.mm_projector.2.bias"])
    grid = MEMORY.image_size // MEMORY.patch_size
    x = F.avg_pool2d(x.view(len(frames), grid, grid, -1).permute(0, 3, 1, 2), 2)
    return x.permute(0, 2, 3, 1).reshape(len(frames), -1, HIDDEN)


def frames(count: int, seed: int) -> torch.Tensor:
    return torch.rand(count, 3, MEMORY.image_size, MEMORY.image_size, generator=torch.Generator().manual_seed(seed))


def assert_view(view: MemoryView, expected) -> None:
    assert view.num_layers == len(expected)
    for keys, values, (want_keys, want_values) in zip(view.keys, view.values, expected):
        torch.testing.assert_close(keys[0], want_keys, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(values[0], want_values, atol=1e-4, rtol=1e-4)


def test_memory_is_video_xl_beacon_memory(release, converted):
    _, theirs, _ = release
    W, memory, clip = theirs["videoxl"], converted.memory_model, frames(5, seed=1)
    config = memory.config
    with torch.no_grad():
        tokens, _ = memory.encode_frames(clip)
        torch.testing.assert_close(tokens, video_xl_frame_tokens(W, clip), atol=1e-5, rtol=1e-4)
        expected = video_xl_memory(W, tokens, config.prompt_prefix, config.prompt_suffix, window=32)
        whole = memory.encode_clip(clip)
        assert whole.plan == (2, 2, 1)  # 32-token windows, the last one half full
        assert_view(whole.view, expected)
        # streaming: committed windows + the pending frame summarised as the video's end, then the prompt's tail
        state = memory.new_state()
        assert memory.global_view(state).num_tokens == 0  # nothing seen: no memory (the release's first segment)
        memory.append(state, clip[:3])
        memory.append(state, clip[3:])
        assert_view(memory.global_view(state), expected)
        assert_view(memory.local_view(state), video_xl_memory(W, tokens[3:], config.prompt_prefix, config.prompt_suffix, 32))


# ---------------------------------------------------------------- SketchDiT + backbone (eq. 3) and DGLM (eq. 4)


def layer_norm(x, W, name):
    return F.layer_norm(x, x.shape[-1:], W[f"{name}.weight"], W[f"{name}.bias"])


def glm_reference(W, global_view: MemoryView, local_view: MemoryView, sketch):
    """global_local_memory(G, L, S) + S, on its raw tensors (latents @ proj_out at the end)."""
    latents, heads = sketch, TINY.dglm.num_heads
    for m in range(3):

        def mapping(kind, z, m=m):
            for index in (0, 3):
                z = F.linear(z, W[f"{kind}_mapping_{m}.{index}.weight"], W[f"{kind}_mapping_{m}.{index}.bias"])
                z = F.leaky_relu(layer_norm(z, W, f"{kind}_mapping_{m}.{index + 1}"))
            return F.linear(z, W[f"{kind}_mapping_{m}.6.weight"], W[f"{kind}_mapping_{m}.6.bias"])

        keys = mapping("key", torch.cat([global_view.keys[m], local_view.keys[m]], dim=1))
        values = mapping("value", torch.cat([global_view.values[m], local_view.values[m]], dim=1))
        a = f"layers.{m}.0."
        keys, values = layer_norm(keys, W, a + "norm1"), layer_norm(values, W, a + "norm1")
        q = F.linear(layer_norm(latents, W, a + "norm2"), W[a + "to_q.weight"])
        k, v = F.linear(keys, W[a + "to_k.weight"]), F.linear(values, W[a + "to_v.weight"])
        split = [t.unflatten(-1, (heads, -1)).transpose(1, 2) for t in (q, k, v)]
        split[1:] = [t.expand(len(latents), -1, -1, -1) for t in split[1:]]
        out = F.scaled_dot_product_attention(*split).transpose(1, 2).flatten(2)
        latents = F.linear(out, W[a + "to_out.weight"]) + latents
        f = f"layers.{m}.1."
        y = F.gelu(F.linear(layer_norm(latents, W, f + "0"), W[f + "1.weight"]))
        latents = F.linear(y, W[f + "3.weight"]) + latents
    return latents @ W["proj_out"] + sketch


def their_forward(backbone, control, zero_conv, noisy, image, sketch, text, timestep, rotary, memory=None):
    """Control3DModel -> (glm) -> Controled_CogVideoXTransformer3DModel with control_scale 0.5."""
    ofs = noisy.new_full((1,), OFS_VALUE)

    def embed(model, latents):
        emb = model.time_embedding(model.time_proj(timestep).to(latents.dtype))
        emb = emb + model.ofs_embedding(model.ofs_proj(ofs).to(latents.dtype))
        tokens = model.patch_embed(text, latents)
        return emb, tokens[:, : text.shape[1]], tokens[:, text.shape[1] :]

    emb, words, vision = embed(control, torch.cat([sketch, image], dim=2))
    for block in control.transformer_blocks:
        vision, words = block(vision, words, emb, rotary)
    signal = F.linear(vision, zero_conv)
    if memory is not None:
        signal = memory(signal)
    emb, words, hidden = embed(backbone, torch.cat([noisy, image], dim=2))
    for i, block in enumerate(backbone.transformer_blocks):
        hidden, words = block(hidden, words, emb, rotary)
        if i % 2 == 0:
            hidden = hidden + 0.5 * signal
    hidden = backbone.norm_final(torch.cat([words, hidden], dim=1))[:, text.shape[1] :]
    hidden = backbone.proj_out(backbone.norm_out(hidden, temb=emb))
    batch, frames, _, height, width = noisy.shape
    p, p_t = backbone.config.patch_size, backbone.config.patch_size_t
    out = hidden.reshape(batch, (frames + p_t - 1) // p_t, height // p, width // p, -1, p_t, p, p)
    return out.permute(0, 1, 5, 4, 2, 6, 3, 7).flatten(6, 7).flatten(4, 5).flatten(1, 2)


def test_denoiser_runs_the_release_as_trained(release, converted):
    _, theirs, _ = release
    control = CogVideoXTransformer3DModel(**TINY_TRANSFORMER | {"num_layers": TINY.sketch_dit.num_layers}).eval()
    missing = control.load_state_dict(theirs["control"], strict=False).missing_keys
    assert all(name.startswith(("norm_final.", "norm_out.", "proj_out.")) for name in missing)
    backbone = converted.backbone.transformer
    rand = Random(7)
    noisy, image, sketch = (rand(2, 2, 16, 8, 8, scale=1.0) for _ in range(3))
    text, timestep = rand(2, TINY_TRANSFORMER["max_text_seq_length"], 64, scale=1.0), torch.tensor([500, 500])
    rotary = rotary_embeddings(backbone.config, 2, 8, 8)
    denoiser = converted.denoiser()
    assert denoiser.injected_blocks == [0, 2, 4]
    with torch.no_grad():
        ours = denoiser(noisy, image, sketch, text, timestep)
        reference = their_forward(backbone, control, theirs["control"]["zero_conv.weight"], noisy, image, sketch,
                                  text, timestep, rotary)
        torch.testing.assert_close(ours, reference, atol=1e-4, rtol=1e-4)

        memory = converted.memory_model
        global_view = memory.encode_clip(frames(4, seed=2)).view
        local_view = memory.local_summaries(memory.encode_frames(frames(2, seed=3))[0])
        views = {"global_view": global_view, "local_view": local_view}
        features = rand(2, 16, WIDTH, scale=1.0)
        torch.testing.assert_close(
            features + converted.dglm(features, **views),
            glm_reference(theirs["glm"], global_view, local_view, features),
            atol=1e-4,
            rtol=1e-4,
        )
        ours = denoiser(noisy, image, sketch, text, timestep, views)
        reference = their_forward(backbone, control, theirs["control"]["zero_conv.weight"], noisy, image, sketch,
                                  text, timestep, rotary, lambda s: glm_reference(theirs["glm"], *views.values(), s))
        torch.testing.assert_close(ours, reference, atol=1e-4, rtol=1e-4)
        assert not torch.allclose(ours, denoiser(noisy, image, sketch, text, timestep), atol=1e-3)  # memory counts


# ---------------------------------------------------------------- refusals: one line, exit code 2


def refused(capsys, args) -> str:
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_refuses_a_pickle_file(release, tmp_path, capsys):
    root, theirs, _ = release
    torch.save(theirs["control"], tmp_path / "control_module.pt")
    err = refused(capsys, convert_args(root, control=tmp_path / "control_module.pt") + [str(tmp_path / "out")])
    assert "pickle" in err and "control_module.pt" in err
    assert not (tmp_path / "out").exists()


def test_refuses_a_missing_tensor(release, tmp_path, capsys):
    root, theirs, _ = release
    save_file({k: v for k, v in theirs["control"].items() if k != "zero_conv.weight"}, str(tmp_path / "c.safetensors"))
    err = refused(capsys, convert_args(root, control=tmp_path / "c.safetensors") + [str(tmp_path / "out")])
    assert "lacks tensor zero_conv.weight" in err


def test_refuses_a_wrong_shape(release, tmp_path, capsys):
    root, theirs, _ = release
    save_file(theirs["glm"] | {"layers.1.0.to_k.weight": torch.zeros(WIDTH, 96)}, str(tmp_path / "g.safetensors"))
    err = refused(capsys, convert_args(root, glm=tmp_path / "g.safetensors") + [str(tmp_path / "out")])
    assert "layers.1.0.to_k.weight has shape [128, 96]" in err and "[128, 128]" in err


def test_refuses_an_unused_tensor(release, tmp_path, capsys):
    root, theirs, _ = release
    save_file(theirs["glm"] | {"layers.3.0.to_q.weight": torch.zeros(WIDTH, WIDTH)}, str(tmp_path / "g.safetensors"))
    err = refused(capsys, convert_args(root, glm=tmp_path / "g.safetensors") + [str(tmp_path / "out")])
    assert "layers.3.0.to_q.weight is not used" in err


def test_refuses_other_beacon_settings(release, tmp_path, capsys):
    root, theirs, _ = release
    config = VIDEO_XL_CONFIG | {"beacon_param": ["q", "k", "v", "o"]}
    write_video_xl(tmp_path / "vxl", theirs["videoxl"], config)
    err = refused(capsys, convert_args(root, videoxl=tmp_path / "vxl") + [str(tmp_path / "out")])
    assert "beacon_param" in err


def test_refuses_a_non_empty_output_folder_without_overwrite(release, tmp_path, capsys):
    root, _, _ = release
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    err = refused(capsys, convert_args(root) + [str(tmp_path / "out")])
    assert "not empty" in err and (tmp_path / "out" / "keep.txt").read_text() == "mine"
