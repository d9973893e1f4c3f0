"""Denoising autoencoder (Vincent et al. 2008): reconstruct the clean input from a corrupted one."""

import torch

from hashindex.errors import HashIndexError
from hashindex.models.base import BinaryAutoencoder

NOISES = ("gaussian", "masking", "salt-pepper")


class DenoisingAutoencoder(BinaryAutoencoder):
    name = "denoising"
    description = "corrupts inputs in training (gaussian, masking or salt-pepper noise at a level)"
    default_hidden = (512, 256)

    def __init__(self, config):
        super().__init__(config)
        if config.noise not in NOISES:
            raise HashIndexError(
                f"unknown noise {config.noise!r}; choose one of {', '.join(NOISES)}"
            )
        if not 0.0 <= config.noise_level <= (10.0 if config.noise == "gaussian" else 1.0):
            raise HashIndexError(
                f"noise_level={config.noise_level} is out of range for {config.noise} noise "
                "(gaussian: 0–10 standard deviations, masking/salt-pepper: a fraction 0–1)"
            )

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        level = self.config.noise_level
        if self.config.noise == "gaussian":
            return x + level * torch.randn_like(x)
        hit = torch.rand_like(x) < level
        if self.config.noise == "masking":
            return x.masked_fill(hit, 0.0)
        # salt-and-pepper: hit entries jump to the batch's per-feature min or max
        salt = torch.rand_like(x) < 0.5
        extremes = torch.where(salt, x.max(dim=0).values, x.min(dim=0).values)
        return torch.where(hit, extremes, x)
