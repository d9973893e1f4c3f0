"""Variational binary autoencoder: a Bernoulli latent q(b|x) = sigmoid(logits) with
KL(q ‖ Bernoulli(½)) per bit, relaxed by Gumbel-sigmoid or straight-through sampling."""

import math

import torch

from hashindex.errors import HashIndexError
from hashindex.models.base import BinaryAutoencoder

RELAXATIONS = {"gumbel": "gumbel", "ste": "bernoulli"}


class VariationalAutoencoder(BinaryAutoencoder):
    name = "variational"
    description = "Bernoulli latent with KL to a uniform prior, Gumbel-sigmoid or straight-through"
    default_hidden = (512, 256)

    def __init__(self, config):
        if config.relaxation not in RELAXATIONS:
            raise HashIndexError(
                f"unknown relaxation {config.relaxation!r}; choose one of {', '.join(RELAXATIONS)}"
            )
        self.code_estimator_override = RELAXATIONS[config.relaxation]
        super().__init__(config)

    def penalty(self, out):
        q = torch.sigmoid(out["logits"]).clamp(1e-6, 1 - 1e-6)
        # KL(Bern(q) ‖ Bern(½)) = q log q + (1-q) log(1-q) + log 2
        kl = q * torch.log(q) + (1 - q) * torch.log(1 - q) + math.log(2.0)
        return self.config.kl_weight * kl.sum(dim=1).mean()
