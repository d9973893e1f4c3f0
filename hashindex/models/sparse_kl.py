"""Sparse autoencoder: a KL penalty pulls each hidden unit's mean activation to ρ (Ng 2011)."""

import torch

from hashindex.models.base import BinaryAutoencoder


class KLSparseAutoencoder(BinaryAutoencoder):
    name = "sparse-kl"
    description = "sigmoid hidden layer, KL(ρ‖ρ̂) pulls each unit's mean activation to a target rate"
    default_hidden = (512,)
    default_activation = "sigmoid"

    def penalty(self, out):
        rho = self.config.sparse_rho
        rho_hat = out["hidden"].mean(dim=0).clamp(1e-6, 1 - 1e-6)
        kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
        return self.config.sparse_weight * kl.sum()
