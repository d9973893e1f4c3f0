"""Variational binary autoencoder: a Bernoulli latent q(b|x) = sigmoid(logits) with
KL(q ‖ Bernoulli(½)) per bit, relaxed by Gumbel-sigmoid or straight-through sampling."""

import math

import torch

from hashindex.models.base import BinaryAutoencoder

# the relaxation option → the code layer's estimator
ESTIMATOR_OF = {"gumbel": "gumbel", "ste": "bernoulli"}


class VariationalAutoencoder(BinaryAutoencoder):
    def __init__(self, config):
        self.code_estimator_override = ESTIMATOR_OF[config.options.relaxation]
        super().__init__(config)

    def penalty(self, out):
        q = torch.sigmoid(out["logits"]).clamp(1e-6, 1 - 1e-6)
        # KL(Bern(q) ‖ Bern(½)) = q log q + (1-q) log(1-q) + log 2
        kl = q * torch.log(q) + (1 - q) * torch.log(1 - q) + math.log(2.0)
        return self.options.kl_weight * kl.sum(dim=1).mean()
