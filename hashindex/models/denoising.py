"""Denoising autoencoder (Vincent et al. 2008): reconstruct the clean input from a corrupted one."""

import torch

from hashindex.models.base import BinaryAutoencoder


class DenoisingAutoencoder(BinaryAutoencoder):
    """The noise kind and level are DenoisingOptions (checked there)."""

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        level = self.options.noise_level
        if self.options.noise == "gaussian":
            return x + level * torch.randn_like(x)
        hit = torch.rand_like(x) < level
        if self.options.noise == "masking":
            return x.masked_fill(hit, 0.0)
        # salt-and-pepper: hit entries jump to the batch's per-feature min or max
        salt = torch.rand_like(x) < 0.5
        extremes = torch.where(salt, x.max(dim=0).values, x.min(dim=0).values)
        return torch.where(hit, extremes, x)
