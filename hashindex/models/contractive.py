"""Contractive autoencoder (Rifai et al. 2011): λ·‖∂c/∂x‖²_F with c = sigmoid(code logits).

The Jacobian is the exact one of the whole encoder, computed per sample with torch.func
(vmap over jacrev), not the one-layer closed form, so deep encoders are penalised correctly.
"""

import torch
from torch.func import jacrev, vmap

from hashindex.models.base import BinaryAutoencoder


class ContractiveAutoencoder(BinaryAutoencoder):
    """The weight λ is ContractiveOptions.contractive_weight."""

    def code_probabilities(self, x_normalized: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits_from_normalized(x_normalized))

    def jacobian_penalty(self, x_normalized: torch.Tensor) -> torch.Tensor:
        """Mean over the batch of the squared Frobenius norm of ∂c/∂x for each sample."""

        def single(sample: torch.Tensor) -> torch.Tensor:
            return self.code_probabilities(sample.unsqueeze(0)).squeeze(0)

        jacobians = vmap(jacrev(single))(x_normalized)  # (batch, bits, input_dim)
        return (jacobians**2).sum(dim=(1, 2)).mean()

    def penalty(self, out):
        return self.options.contractive_weight * self.jacobian_penalty(out["x_in"])
