"""Stage ``vae`` (tiny preset only): train the CogVideoX 3D VAE as an autoencoder on toon clips.

The paper takes CogVideoX's VAE pretrained; the tiny preset starts it random.
With posterior ``q(z|x) = N(mu, sigma^2)`` from the encoder and the
reparameterised ``z = mu + sigma * n`` (``n`` from the step's generator), the
loss per clip is

    l1_weight * mean|x - D(z)| + mse_weight * mean(x - D(z))^2
        + kl_weight * mean(0.5 (mu^2 + sigma^2 - 1 - log sigma^2))

all means over elements (pixels, resp. latent entries). ``latent_std`` --
the standard deviation of ``mu`` times the scaling factor, i.e. of the
latents the diffusion stages see -- is logged: it should stay near 1.

``inflate_time_kernels`` turns a VAE trained on single frames into one that
codes clips: a 1-frame clip reaches the causal 3D convolutions padded with
copies of itself, so only the sum of each kernel over time was learned;
putting that sum on the current-frame tap (zeros on the past taps) keeps
every single-frame output and makes each frame of a clip coded on its own,
the usual inflation of an image autoencoder into a video one.
"""

from __future__ import annotations

import torch

from ..batches import ClipBatch
from .core import StepContext, TrainingStage


@torch.no_grad()
def inflate_time_kernels(vae: torch.nn.Module) -> int:
    """Move each temporal kernel's weight onto its last (current-frame) tap; returns how many convs changed."""
    changed = 0
    for module in vae.modules():
        if isinstance(module, torch.nn.Conv3d) and module.weight.shape[2] > 1:
            total = module.weight.sum(dim=2, keepdim=True)
            module.weight.zero_()
            module.weight[:, :, -1:] = total
            changed += 1
    return changed


class VAEStage(TrainingStage):
    """Trains ``backbone.vae`` only."""

    name = "vae"
    trains = ("backbone.vae",)
    paper = False

    def __init__(self, model, config) -> None:
        super().__init__(model, config)
        if config.vae.inflate_time_kernels:
            inflate_time_kernels(self.vae)

    def freeze_all_but_trained(self) -> None:
        super().freeze_all_but_trained()
        if self.config.vae.decoder_only:
            self.vae.encoder.requires_grad_(False).eval()
            if self.vae.quant_conv is not None:
                self.vae.quant_conv.requires_grad_(False)

    def run_step(self, batch: ClipBatch, context: StepContext) -> dict[str, float]:
        backbone = self.model.backbone
        frames, height, width = batch.target.shape[2:]
        scale = backbone.spatial_compression
        shape = (batch.size, self.vae.config.latent_channels, backbone.num_latent_frames(frames))
        noise = torch.randn(*shape, height // scale, width // scale, generator=context.generator)
        latent_noise = torch.zeros(())
        if self.config.vae.latent_noise > 0:  # the decoder's noise augmentation (decoder fine-tuning)
            latent_noise = torch.randn(noise.shape, generator=context.generator)
            strength = torch.rand(batch.size, 1, 1, 1, 1, generator=context.generator) * self.config.vae.latent_noise
            latent_noise *= strength / self.vae.config.scaling_factor
        device = batch.target.device
        return self.backward_once(context, batch.target, noise.to(device), latent_noise.to(device))

    def forward(
        self, video: torch.Tensor, noise: torch.Tensor, latent_noise: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``video`` ``(B, 3, F, H, W)`` in [-1, 1], ``noise`` like the latents, ``latent_noise`` too (or 0) -> loss, terms."""
        posterior = self.vae.encode(video.to(self.vae.dtype)).latent_dist
        dtype = posterior.mean.dtype
        latents = posterior.mean + posterior.std * noise.to(dtype) + latent_noise.to(dtype)
        reconstruction = self.vae.decode(latents).sample.float()
        error = reconstruction - video.float()
        l1, mse = error.abs().mean(), error.square().mean()
        kl = 0.5 * (posterior.mean.square() + posterior.var - 1.0 - posterior.logvar).float().mean()
        weights = self.config.vae
        loss = weights.l1_weight * l1 + weights.mse_weight * mse + weights.kl_weight * kl
        latent_std = (posterior.mean.detach().float() * self.vae.config.scaling_factor).std()
        return loss, {"l1": l1.detach(), "mse": mse.detach(), "kl": kl.detach(), "latent_std": latent_std}
