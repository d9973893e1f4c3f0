"""The binary code layer shared by every autoencoder variant.

A linear map to `bits` pre-activations (logits). At inference the bits are `logits > 0`. In
training the layer emits a relaxed code in [-1, 1] through one of these estimators:

- ``ste``: sign in the forward pass, the gradient of tanh in the backward (straight-through,
  Bengio et al. 2013).
- ``bernoulli``: stochastic binary neurons b ~ Bernoulli(sigmoid(z)), straight-through gradient
  of the probability.
- ``noise-sigmoid``: Gaussian noise added before a sigmoid, which forces the logits far from 0
  so the deterministic code is nearly binary (Salakhutdinov & Hinton 2009, semantic hashing).
- ``gumbel``: binary-concrete / Gumbel-sigmoid relaxation (Maddison et al. 2017) at a fixed
  temperature; the variational variant uses it.
"""

from __future__ import annotations

import torch
from torch import nn

from hashindex.errors import HashIndexError
from hashindex.models.options import CODE_ESTIMATORS


def check_estimator(name: str) -> str:
    if name not in CODE_ESTIMATORS:
        raise HashIndexError(
            f"unknown code estimator {name!r}; choose one of {', '.join(CODE_ESTIMATORS)}"
        )
    return name


class BinaryCodeLayer(nn.Module):
    def __init__(
        self,
        in_features: int,
        bits: int,
        estimator: str = "ste",
        noise_std: float = 4.0,
        temperature: float = 0.5,
    ):
        super().__init__()
        self.linear = nn.Linear(in_features, bits)
        self.estimator = check_estimator(estimator)
        self.noise_std = noise_std
        self.temperature = temperature

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.linear(hidden)

    def relax(self, logits: torch.Tensor) -> torch.Tensor:
        """Code in [-1, 1] used by the decoder: hard ±1 at eval, the estimator's in training."""
        hard = torch.where(logits > 0, 1.0, -1.0).to(logits.dtype)
        if not self.training:
            return hard
        if self.estimator == "ste":
            soft = torch.tanh(logits)
            return soft + (hard - soft).detach()
        if self.estimator == "bernoulli":
            prob = torch.sigmoid(logits)
            sample = torch.bernoulli(prob.detach())
            return 2.0 * (prob + (sample - prob).detach()) - 1.0
        if self.estimator == "noise-sigmoid":
            noisy = logits + self.noise_std * torch.randn_like(logits)
            return 2.0 * torch.sigmoid(noisy) - 1.0
        # gumbel: logistic noise = difference of two Gumbels, then a tempered sigmoid
        uniform = torch.rand_like(logits).clamp(1e-6, 1 - 1e-6)
        noise = torch.log(uniform) - torch.log1p(-uniform)
        return 2.0 * torch.sigmoid((logits + noise) / self.temperature) - 1.0

    def forward(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.logits(hidden)
        return logits, self.relax(logits)
