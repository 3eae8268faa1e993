"""Does the DGLM lower the diffusion loss? Eq. 1 with and without the memory (eq. 4) on the same clips.

    python benchmarks/memory_probe.py --model DIR [--clips 40] [--far] [--memory-objects]

Clips come from toon worlds never used in training (seeds 200-209, full
128x128 frames) with the data settings of ``configs/train/tiny-memory.yaml``;
``--far`` starts every segment at frame 150 or later and draws its reference
from up to 400 frames back, as inference from one keyframe at frame 0 does.
``--memory-objects`` draws clips whose target shows an object the history
shows and the reference does not, and weighs its pixels 8x in eq. 1
(``data.weighted_objects: memory``): the colors only the memory can carry.
For each clip the same noise and timestep (t in [900, 1000), the shipped
sampler's) are scored twice through the stage-2 model: with the memory built
from the clip's history, and without it (SketchDiT alone, fig. 2(b)).
Prints both mean losses and the mean paired difference with its standard
error (negative: the memory helps).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from longanimation.training.batches import collate
from longanimation.training.diffusion import encode_target
from longanimation.training.config import load_config
from longanimation.training.data import build_dataset
from longanimation.training.diffusion import draw_noise, latent_weights
from longanimation.training.model_source import load_model
from longanimation.training.stages import STAGES

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "train" / "tiny-memory.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--far", action="store_true", help="segments from frame 150 on, reference up to 400 back")
    parser.add_argument("--memory-objects", action="store_true", help="weigh objects only the history shows 8x")
    args = parser.parse_args()
    config = load_config(CONFIG)
    config.model.init_from = args.model
    data = config.data
    data.world_seeds, data.crop_height, data.crop_width, data.sample_seed = list(range(200, 210)), 0, 0, 123
    if args.far:
        data.min_history_frames, data.max_reference_distance = 150, 400
    if args.memory_objects:
        data.weighted_objects, config.diffusion.object_loss_weight = "memory", 8.0
    model = load_model(config.model, "memory").eval()
    stage = STAGES["memory"](model, config).eval()
    clips = build_dataset(data)
    backbone = model.backbone
    with_memory, without = [], []
    with torch.no_grad():
        for index in range(args.clips):
            batch = collate([clips[index]])
            generator = torch.Generator().manual_seed(index)
            conditions = batch.conditions(backbone, model.sketch_dit, with_sketch=True)
            clean = encode_target(backbone, batch.target, conditions.lead, generator)
            steps = backbone.scheduler.config.num_train_timesteps
            noise, timesteps = draw_noise(clean, steps, generator, config.diffusion)
            noisy = backbone.scheduler.add_noise(clean, noise, timesteps)
            memory = stage.memory_inputs(batch)
            weights = None
            if args.memory_objects:
                frames, size = clean.shape[1] - conditions.lead, clean.shape[-2:]
                weights = latent_weights(batch.object_mask, frames, size, config.diffusion.object_loss_weight)
            with_memory.append(stage(noisy, conditions, timesteps, clean, noise, memory, weights)[0].item())
            without.append(stage(noisy, conditions, timesteps, clean, noise, None, weights)[0].item())
    difference = np.array(with_memory) - np.array(without)
    kind = "".join([" (far reference)" if args.far else "", " (objects only the memory shows, 8x)" if args.memory_objects else ""])
    print(f"{args.clips} clips{kind}: loss with memory {np.mean(with_memory):.5f}, "
          f"without {np.mean(without):.5f}, difference {difference.mean():+.5f} ± "
          f"{difference.std() / np.sqrt(len(difference)):.5f}")


if __name__ == "__main__":
    main()
