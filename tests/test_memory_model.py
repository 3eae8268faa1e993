"""The long-video memory model (sec. 3.2.2): chunking, streaming, bounded cost, state and checkpoints."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from transformers import DynamicCache
from transformers.models.qwen2.modeling_qwen2 import apply_rotary_pos_emb

from longanimation.errors import UserError
from longanimation.models.memory_model import LongVideoMemoryModel, MemoryModelConfig
from longanimation.models.memory_state import MemoryState, SummaryCache, plan_chunks


def build(**changes) -> LongVideoMemoryModel:
    torch.manual_seed(0)
    return LongVideoMemoryModel(dataclasses.replace(MemoryModelConfig.tiny(), **changes)).eval()


@pytest.fixture(scope="module")
def model() -> LongVideoMemoryModel:
    return build()


def clip(kind: str, count: int, seed: int = 0) -> torch.Tensor:
    """Synthetic frames (count, 3, 96, 128).

    'still': one drawing held; 'noise': every frame new; 'flicker': a smooth
    image whose brightness alternates by 0.03 (a medium change for the tiny model).
    """
    generator = torch.Generator().manual_seed(seed)
    if kind == "noise":
        return torch.rand(count, 3, 96, 128, generator=generator)
    if kind == "still":
        return torch.rand(1, 3, 96, 128, generator=generator).expand(count, -1, -1, -1).clone()
    smooth = F.interpolate(torch.rand(1, 3, 12, 16, generator=generator), size=(96, 128), mode="bilinear")
    return torch.cat([smooth + 0.03 * (t % 2) for t in range(count)]).clamp(0, 1)


def views_equal(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.keys + a.values, b.keys + b.values, strict=True))


def test_plan_chunks_rule():
    sizes, thresholds = (8, 4, 2), (0.1, 0.3)
    calm, busy = [0.0] * 15, [0.5] * 15
    assert plan_chunks(calm, 16, sizes, thresholds, final=False) == [8, 8]
    assert plan_chunks(busy, 7, sizes, thresholds, final=False) == [2, 2, 2]  # 7th frame waits for a partner
    assert plan_chunks(busy, 7, sizes, thresholds, final=True) == [2, 2, 2, 1]
    assert plan_chunks(calm, 5, sizes, thresholds, final=False) == []  # might still become a chunk of 8
    assert plan_chunks(calm, 5, sizes, thresholds, final=True) == [5]
    medium = [0.2] * 9  # too busy for 8, calm enough for 4
    assert plan_chunks(medium, 10, sizes, thresholds, final=False) == [4, 4]
    # a jump between frames 2 and 3 rules out 8 and 4 from frame 0 before frame 7 exists
    assert plan_chunks([0.0, 0.0, 0.5, 0.0, 0.0], 6, sizes, thresholds, final=False) == [2, 2]


def test_chunk_sizes_follow_feature_change(model):
    assert model.encode_clip(clip("still", 16)).plan == (8, 8)
    assert model.encode_clip(clip("noise", 10)).plan == (2, 2, 2, 2, 2)
    mixed = torch.cat([clip("still", 8), clip("noise", 6, seed=1)])
    assert model.encode_clip(mixed).plan == (8, 2, 2, 2)
    assert model.encode_clip(clip("flicker", 12)).plan == (4, 4, 4)


def test_trunk_matches_qwen2_forward(model):
    """The chunk loop reuses Qwen2's modules; check it against Qwen2Model.forward with a DynamicCache."""
    config = model.config
    with torch.no_grad():
        embeds, _ = model.encode_frames(clip("noise", 4))
        cache = model.run_chunks(model.new_state().cache, embeds[:2], [2])
        keys, _ = model.summarize(cache, embeds[2:].flatten(0, 1))
        assert model.cached_layers == config.num_layers
        past = DynamicCache(config=model.lm.config)
        cos, sin = model.lm.rotary_emb(embeds, torch.arange(len(cache))[None])
        for index in range(config.num_layers):
            key, value = (
                t.unflatten(-1, (config.num_kv_heads, -1)).transpose(0, 1)[None]
                for t in (cache.keys[index], cache.values[index])
            )
            _, rotated = apply_rotary_pos_emb(key, key, cos, sin)
            past.update(rotated, value, index)
        captured = {}
        hooks = [
            model.lm.layers[i].self_attn.k_proj.register_forward_hook(
                lambda module, args, out, i=i: captured.__setitem__(i, out[0, slots])
            )
            for i in config.memory_layers
        ]
        sequence, slots = model.interleave(embeds[2:].flatten(0, 1))
        positions = torch.arange(len(cache), len(cache) + len(sequence))[None]
        model.lm(inputs_embeds=sequence[None], past_key_values=past, position_ids=positions)
        for hook in hooks:
            hook.remove()
    for i in config.memory_layers:
        torch.testing.assert_close(keys[i], captured[i], atol=2e-5, rtol=1e-4)


def test_streaming_in_batches_is_bit_exact(model):
    frames = torch.cat([clip("still", 11), clip("noise", 9, seed=1), clip("still", 13, seed=2)])
    with torch.no_grad():
        whole = model.new_state()
        model.append(whole, clip("still", 1, seed=9), pinned=True)
        model.append(whole, frames)
        parts = model.new_state()
        model.append(parts, clip("still", 1, seed=9), pinned=True)
        for start, stop in ((0, 5), (5, 17), (17, 33)):
            model.append(parts, frames[start:stop])
        alone = model.new_state()
        model.append(alone, frames[17:33])
    assert whole.num_pending == parts.num_pending > 0  # the last still run is still undecided
    assert views_equal(model.global_view(whole), model.global_view(parts))
    tensors_whole, meta_whole = whole.state_dict()
    tensors_parts, meta_parts = parts.state_dict()
    shared = [name for name in tensors_whole if not name.startswith("local.")]
    assert all(torch.equal(tensors_whole[name], tensors_parts[name]) for name in shared)
    assert meta_whole == meta_parts
    # the local view is the latest batch on its own, whatever came before
    assert views_equal(model.local_view(parts), model.local_view(alone))
    assert model.local_view(parts).num_tokens == 8 * model.config.summaries_per_chunk  # 8 chunks of 2 frames


def test_pending_frames_are_in_the_global_view(model):
    with torch.no_grad():
        state = model.new_state()
        stats = model.append(state, clip("still", 5))
        assert (stats.chunks_committed, stats.pending_frames) == (0, 5)
        per_chunk = model.config.summaries_per_chunk
        assert model.global_view(state).num_tokens == per_chunk  # one provisional chunk
        stats = model.append(state, clip("still", 4))
    assert (stats.chunks_committed, stats.pending_frames, len(state.cache)) == (1, 1, per_chunk)
    assert model.global_view(state).num_tokens == 2 * per_chunk


def test_cost_stays_flat_and_pins_survive():
    small = build(summary_tokens=2, max_global_summaries=8)
    keyframe = clip("still", 1, seed=5)
    with torch.no_grad():
        state = small.new_state()
        small.append(state, keyframe, pinned=True)
        pinned_keys = [k.clone() for k in state.cache.keys]
        history = [small.append(state, clip("noise", 16, seed=i)) for i in range(20)]
    early, late = history[1], history[-1]  # after 32 frames vs after 320 frames
    assert early.frames_encoded == late.frames_encoded == 16
    assert early.lm_tokens == late.lm_tokens
    chunk = 2 * small.config.tokens_per_frame + 2  # noise -> chunks of 2 frames, plus 2 summary tokens
    most = 8 * (2 + 8 + chunk) + sum(2 * i + chunk for i in range(8))  # history <= pinned + bound; local view
    assert max(stats.lm_keys for stats in history) <= most < 8 * 320  # 320 = summaries without merging
    free = int((~state.cache.pinned).sum())
    assert free <= 8 and state.cache.pinned[:2].all()
    assert int(state.cache.weights[~state.cache.pinned].sum()) == 2 * 320  # two tokens per chunk
    assert all(torch.equal(cache[0], first[0]) for cache, first in zip(state.cache.keys, pinned_keys))
    print(f"\nkeys attended per 16-frame append: after 32 frames {early.lm_keys}, after 320 frames {late.lm_keys}")


def test_merge_rule_is_frame_weighted():
    cache = SummaryCache.empty(1, 2, device="cpu", dtype=torch.float32)
    for step, (weight, pinned) in enumerate([(2, False), (1, True), (6, False), (2, False), (8, False), (2, False)]):
        cache = cache.add([torch.full((1, 2), float(step))], [torch.full((1, 2), -float(step))], weight, pinned)
    merged = cache.merge_oldest(4)  # 5 unpinned > 4: entries 0 and 2 merge (1 is pinned, stays in place)
    assert merged.weights.tolist() == [8, 1, 2, 8, 2]
    assert merged.pinned.tolist() == [False, True, False, False, False]
    assert merged.keys[0][:, 0].tolist() == [(0 * 2 + 2 * 6) / 8, 1, 3, 4, 5]


def test_merge_pairs_chunks_token_by_token():
    cache = SummaryCache.empty(1, 1, device="cpu", dtype=torch.float32)
    for step, (weight, pinned) in enumerate([(1, True), (2, False), (2, False), (2, False), (4, False)]):
        tokens = torch.tensor([[10.0 * step], [10.0 * step + 1]])  # two summary tokens per chunk
        cache = cache.add([tokens], [-tokens], weight, pinned)
    merged = cache.merge_oldest(6, group=2)  # 4 unpinned chunks (8 tokens) > 6: chunks 1 and 2 merge
    assert merged.pinned.tolist() == [True, True, False, False, False, False, False, False]
    assert merged.weights.tolist() == [1, 1, 4, 4, 2, 2, 4, 4]
    assert merged.keys[0][:, 0].tolist() == [0, 1, 15, 16, 30, 31, 40, 41]
    assert torch.equal(merged.values[0], -merged.keys[0])


def test_state_round_trip(model, tmp_path):
    with torch.no_grad():
        state = model.new_state()
        model.append(state, clip("still", 1, seed=4), pinned=True)
        model.append(state, torch.cat([clip("noise", 6), clip("still", 5)]))
        state.save(tmp_path / "memory.safetensors")
        restored = MemoryState.load(tmp_path / "memory.safetensors")
        tensors, meta = state.state_dict()
        again, meta_again = restored.state_dict()
        assert meta == meta_again and tensors.keys() == again.keys()
        assert all(torch.equal(tensors[name], again[name]) for name in tensors)
        assert all(tensors[name].dtype == again[name].dtype for name in tensors)
        more = clip("still", 6, seed=7)
        model.append(state, more)
        model.append(restored, more)
    assert views_equal(model.global_view(state), model.global_view(restored))
    with pytest.raises(UserError):
        MemoryState.from_state_dict(tensors, {"format": "something else"})


def test_encode_clip_has_gradients(model):
    memory = model.encode_clip(clip("noise", 5))
    loss = sum(k.square().sum() for k in memory.view.keys + memory.view.values)
    loss.backward()
    reached = ("summary_embedding", "projector.0.weight", "lm.layers.0.self_attn.q_proj.weight")
    for name in reached + ("vision.embeddings.patch_embedding.weight",):
        assert model.get_parameter(name).grad.abs().sum() > 0, name
    model.zero_grad(set_to_none=True)


def test_model_save_load_round_trip(model, tmp_path):
    model.save_pretrained(tmp_path / "memory")
    loaded = LongVideoMemoryModel.from_pretrained(tmp_path / "memory").eval()
    assert loaded.config == model.config
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[name], restored[name]) for name in original)
    with torch.no_grad():
        frames = clip("noise", 4)
        assert views_equal(model.encode_clip(frames).view, loaded.encode_clip(frames).view)


def test_rejects_bad_frames(model):
    with pytest.raises(UserError):
        model.append(model.new_state(), torch.zeros(2, 96, 128, 3, dtype=torch.uint8))
    with pytest.raises(UserError):
        MemoryModelConfig(memory_layers=(27, 19))


def test_paper_config_builds_on_meta():
    with torch.device("meta"):
        paper = LongVideoMemoryModel(MemoryModelConfig.paper())
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    vision, trunk, embed = count(paper.vision), count(paper.lm), paper.lm.embed_tokens.weight.numel()
    print(
        f"\npaper memory model: CLIP {vision / 1e9:.3f} B, Qwen2 trunk {trunk / 1e9:.3f} B "
        f"({(trunk - embed) / 1e9:.3f} B without token embeddings), projector {count(paper.projector) / 1e6:.1f} M, "
        f"total {count(paper) / 1e9:.3f} B; kv width {paper.config.kv_width}, "
        f"{paper.config.tokens_per_frame} tokens/frame"
    )
    assert 0.29e9 < vision < 0.31e9
    assert 6.4e9 < trunk - embed < 6.6e9 and 7.0e9 < trunk < 7.1e9
    assert paper.config.kv_width == 512 and paper.config.tokens_per_frame == 144
