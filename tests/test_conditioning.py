"""One conditioning path: training batches and pipeline segments give the denoiser the same inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from longanimation.data.clips import TrainingClip
from longanimation.data.toon import ToonConfig, ToonWorld
from longanimation.models.conditioning import (
    guided_velocity,
    memory_views,
    predict_velocity,
    prompt_embeddings,
    start_memory,
    unit_pixels,
)
from longanimation.models.longanimation_model import LongAnimationModel
from longanimation.pipeline.long_animation import ColorizeOptions, LongAnimationPipeline
from longanimation.training.batches import collate


@pytest.fixture(scope="module")
def pipeline():
    model = LongAnimationModel.from_preset("tiny", seed=0)
    torch.manual_seed(1)
    for parameter in model.dglm.parameters():  # a DGLM whose output is not zero, so memory changes velocities
        torch.nn.init.normal_(parameter, std=0.05)
    return LongAnimationPipeline(model)


@pytest.fixture(scope="module")
def clip():
    shot = ToonWorld(ToonConfig(seed=5, frames=30, height=32, width=32)).render_range(0, 30)
    return shot.lineart, shot.color


def training_clip(lineart, color, start, frames, prompt):
    return TrainingClip(
        target=color[start : start + frames],
        sketches=lineart[start : start + frames],
        reference=color[0],
        reference_sketch=lineart[0],
        history=color[1:start],
        prompt=prompt,
        target_start=start,
        reference_index=0,
    )


def segment_job(pipeline, lineart, color):
    options = ColorizeOptions(segment_frames=17, overlap=4, collapse_held_drawings=False).resolved(pipeline.model)
    _, jobs = pipeline.plan(lineart[:17], [0], options)
    return jobs[0]


def test_a_segment_and_a_training_batch_of_the_same_frames_have_equal_conditions(pipeline, clip):
    lineart, color = clip
    job = segment_job(pipeline, lineart, color)
    text = prompt_embeddings(pipeline.backbone, ["a red ball"], guided=False)
    inference = pipeline._conditions(job, lineart[:17], (color[0], lineart[0]), text)
    training = collate([training_clip(lineart, color, 0, 17, "a red ball")]).conditions(
        pipeline.backbone, pipeline.model.sketch_dit, with_sketch=True
    )
    assert inference.lead == training.lead
    for name in ("image", "sketch", "text"):
        assert torch.equal(getattr(inference, name), getattr(training, name)), name


def test_guidance_extrapolates_from_the_unconditional_prediction(pipeline, clip):
    lineart, color = clip
    batch = collate([training_clip(lineart, color, 0, 17, "a red ball")])
    guided = batch.conditions(pipeline.backbone, pipeline.model.sketch_dit, with_sketch=True, guided=True)
    latents = torch.randn(guided.image.shape, generator=torch.Generator().manual_seed(0))
    timestep = torch.tensor(500)
    parts = []
    for row in range(2):  # [unconditional, conditional]
        single = type(guided)(guided.image, guided.text[row : row + 1], guided.lead, guided.sketch)
        parts.append(predict_velocity(pipeline.denoiser, latents, timestep, single))
    expected = parts[0] + 3.0 * (parts[1] - parts[0])
    assert torch.allclose(guided_velocity(pipeline.denoiser, latents, timestep, guided, None, 3.0), expected, atol=1e-5)
    plain = batch.conditions(pipeline.backbone, pipeline.model.sketch_dit, with_sketch=True)
    assert torch.equal(
        guided_velocity(pipeline.denoiser, latents, timestep, plain, None, 1.0),
        predict_velocity(pipeline.denoiser, latents, timestep, plain),
    )


def test_training_memory_is_the_memory_inference_streams(pipeline, clip):
    """A clip's history streamed in segment-sized appends is the memory the pipeline holds after those segments."""
    lineart, color = clip
    memory_model = pipeline.model.memory_model
    start, fresh = 27, 13  # history = frames 1..26, two appends of 13 (the fresh frames of F=17, C=4 segments)
    batch = collate([training_clip(lineart, color, start, 1, "")])
    training = batch.memory_inputs(memory_model, append_frames=fresh)

    state = start_memory(memory_model, unit_pixels(color[:1]))  # the keyframe, pinned
    for first in range(1, start, fresh):  # the pipeline appends each segment's fresh frames once
        memory_model.append(state, unit_pixels(color[first : first + fresh]))
    inference = memory_views(memory_model, state, "both")
    for name in ("global_view", "local_view"):
        ours, theirs = training[name], inference[name]
        for field in ("keys", "values"):
            a, b = getattr(ours, field), getattr(theirs, field)
            assert len(a) == len(b) and all(torch.allclose(x, y, atol=1e-6) for x, y in zip(a, b)), (name, field)
    conditions = _toy_conditions(pipeline)
    latents = torch.randn(conditions.image.shape, generator=torch.Generator().manual_seed(0))
    velocities = [
        predict_velocity(pipeline.denoiser, latents, torch.tensor(500), conditions, views)
        for views in (training, inference, None)
    ]
    assert torch.allclose(velocities[0], velocities[1], atol=1e-5)
    assert not torch.allclose(velocities[0], velocities[2], atol=1e-5)  # the memory acts


def _toy_conditions(pipeline):
    lineart = np.zeros((1, 32, 32), bool)
    color = np.full((1, 32, 32, 3), 128, np.uint8)
    clip = TrainingClip(color, lineart, color[0], lineart[0], color[:0], "", 0, 0)
    return collate([clip]).conditions(pipeline.backbone, pipeline.model.sketch_dit, with_sketch=True)
