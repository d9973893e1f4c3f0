"""Sparse autoencoder: a KL penalty pulls each hidden unit's mean activation to ρ (Ng 2011)."""

import torch

from hashindex.models.base import BinaryAutoencoder


class KLSparseAutoencoder(BinaryAutoencoder):
    fixed_activation = "sigmoid"  # the KL target is a mean activation rate

    def penalty(self, out):
        rho = self.options.sparse_rho
        rho_hat = out["hidden"].mean(dim=0).clamp(1e-6, 1 - 1e-6)
        kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
        return self.options.sparse_weight * kl.sum()
