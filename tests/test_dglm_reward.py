"""DGLM (eq. 4) and the Color Consistency Reward (eq. 5) on tiny models."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from longanimation.errors import UserError
from longanimation.models.dglm import DGLMConfig, GlobalLocalMemory
from longanimation.models.memory_model import LongVideoMemoryModel, MemoryModelConfig
from longanimation.models.memory_state import MemoryView
from longanimation.models.reward import color_consistency_distance, color_consistency_reward


def random_view(tokens: int, seed: int, batch: int = 1) -> MemoryView:
    generator = torch.Generator().manual_seed(seed)
    width = MemoryModelConfig.tiny().kv_width
    return MemoryView(
        tuple(torch.randn(batch, tokens, width, generator=generator) for _ in range(3)),
        tuple(torch.randn(batch, tokens, width, generator=generator) for _ in range(3)),
    )


def trained_dglm(**flags) -> GlobalLocalMemory:
    """A tiny DGLM after one SGD step, so that every parameter matters."""
    torch.manual_seed(0)
    dglm = GlobalLocalMemory(dataclasses.replace(DGLMConfig.tiny(sketch_dim=32), **flags))
    sketch, target = torch.randn(2, 10, 32), torch.randn(2, 10, 32)
    (dglm(sketch, random_view(6, 1), random_view(4, 2)) * target).sum().backward()
    with torch.no_grad():
        for parameter in dglm.parameters():
            parameter -= 0.1 * parameter.grad.sign()
    dglm.zero_grad(set_to_none=True)
    return dglm


def test_zero_at_init_and_gradients_flow():
    torch.manual_seed(0)
    dglm = GlobalLocalMemory(DGLMConfig.tiny(sketch_dim=32))
    sketch = torch.randn(2, 10, 32, requires_grad=True)
    delta = dglm(sketch, random_view(6, 1), random_view(4, 2))
    assert delta.shape == sketch.shape and torch.equal(delta, torch.zeros_like(delta))
    (sketch + delta).sum().backward()  # at init only the zero output projection gets a gradient
    assert dglm.proj_out.weight.grad.abs().sum() > 0
    trained = trained_dglm()
    (trained(torch.randn(2, 10, 32), random_view(6, 1), random_view(4, 2)) * torch.randn(2, 10, 32)).sum().backward()
    silent = [name for name, p in trained.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not silent, silent


def test_memory_flags_select_global_and_local():
    sketch = torch.randn(1, 10, 32)
    global_a, global_b, local_a, local_b = (random_view(5, seed) for seed in range(4))
    local_only, global_only, both = trained_dglm(use_global=False), trained_dglm(use_local=False), trained_dglm()
    with torch.no_grad():
        assert torch.equal(local_only(sketch, global_a, local_a), local_only(sketch, global_b, local_a))
        assert not torch.equal(local_only(sketch, global_a, local_a), local_only(sketch, global_a, local_b))
        assert torch.equal(global_only(sketch, global_a, local_a), global_only(sketch, global_a, local_b))
        assert not torch.equal(both(sketch, global_a, local_a), both(sketch, global_b, local_a))
        assert not torch.equal(both(sketch, global_a, local_a), both(sketch, global_a, local_b))
        assert torch.equal(both(sketch, None, None), torch.zeros_like(sketch))  # first segment: S alone
    with pytest.raises(UserError):
        DGLMConfig(use_global=False, use_local=False)


def test_padded_batch_matches_single_videos():
    dglm = trained_dglm()
    sketch = torch.randn(2, 10, 32)
    short, long = random_view(3, 1), random_view(7, 2)
    empty = MemoryView(tuple(k[:, :0] for k in short.keys), tuple(v[:, :0] for v in short.values))
    batch_global = MemoryView.stack([short, long])
    batch_local = MemoryView.stack([empty, random_view(2, 3)])
    assert batch_global.mask.tolist()[0] == [True] * 3 + [False] * 4
    with torch.no_grad():
        together = dglm(sketch, batch_global, batch_local)
        first = dglm(sketch[:1], short, None)
        second = dglm(sketch[1:], long, random_view(2, 3))
        nothing = dglm(sketch[:1], MemoryView.stack([empty]), None)
    torch.testing.assert_close(together, torch.cat([first, second]), atol=1e-5, rtol=1e-5)
    assert torch.equal(nothing, torch.zeros_like(nothing))


def test_dglm_save_load_round_trip(tmp_path):
    dglm = trained_dglm(use_global=False)
    dglm.save_pretrained(tmp_path / "dglm")
    loaded = GlobalLocalMemory.from_pretrained(tmp_path / "dglm")
    assert loaded.config == dglm.config
    assert all(torch.equal(a, b) for a, b in zip(dglm.state_dict().values(), loaded.state_dict().values()))


def test_paper_dglm_builds_on_meta():
    with torch.device("meta"):
        dglm = GlobalLocalMemory(DGLMConfig.paper())
    count = sum(p.numel() for p in dglm.parameters())
    print(f"\npaper DGLM: {count / 1e6:.1f} M parameters")
    assert 300e6 < count < 400e6


@pytest.fixture(scope="module")
def memory() -> LongVideoMemoryModel:
    torch.manual_seed(0)
    return LongVideoMemoryModel(MemoryModelConfig.tiny()).eval()


def test_reward_orders_color_shifts(memory):
    generator = torch.Generator().manual_seed(0)
    reference = torch.rand(2, 9, 3, 48, 64, generator=generator)
    reference[1] = reference[1, :1]  # second clip: a held drawing (chunks of 8)
    with torch.no_grad():
        same = color_consistency_distance(memory, reference, reference.clone())
        small = color_consistency_distance(memory, (reference + 0.05).clamp(0, 1), reference)
        large = color_consistency_distance(memory, (reference + 0.3).clamp(0, 1), reference)
        single = color_consistency_distance(memory, (reference[1:] + 0.05).clamp(0, 1), reference[1:])
        reward = color_consistency_reward(memory, (reference + 0.05).clamp(0, 1), reference)
    print(f"\nCCR distance: identical {same.tolist()}, +0.05 {small.tolist()}, +0.3 {large.tolist()}")
    assert same.shape == (2,) and torch.equal(same, torch.zeros(2))
    assert (small > 0).all() and (large > small).all()
    assert torch.equal(single[0], small[1]) and torch.equal(reward, -small)


def test_reward_aligns_generated_to_reference_chunks(memory):
    generator = torch.Generator().manual_seed(1)
    still = torch.rand(1, 1, 3, 48, 64, generator=generator).expand(1, 8, -1, -1, -1)
    noise = torch.rand(1, 8, 3, 48, 64, generator=generator)
    with torch.no_grad():
        distance = color_consistency_distance(memory, noise, still)  # reference plan: one chunk of 8
        assert memory.encode_clip(noise[0], plan=(8,)).view.num_tokens == memory.config.summaries_per_chunk
    assert distance.shape == (1,) and distance.item() > 0
    with pytest.raises(UserError):
        color_consistency_distance(memory, noise[:, :4], still)
