"""Minimal description length autoencoder (Hinton & Zemel, 1994), for binary codes.

The loss is the free energy of sending a document: the cost of its code under a learned
factorised prior over the bits, p(b) = Π_j π_j^b_j (1 − π_j)^(1 − b_j), plus the cost of the
reconstruction error under a Gaussian with a learned variance σ². With the encoder's bit
probabilities q(b|x) = sigmoid(logits), the code cost is the bits-back one, KL(q(b|x) ‖ p(b));
the error cost is −log N(x | x̂, σ²I) = ½(d·log 2πσ² + ‖x − x̂‖²/σ²). Both are in nats per
input dimension (so the training's other terms keep their scale) and reported apart in the
training history (`code_cost`, `reconstruction`).

How the code cost trades against hashing's bit balance: for confident bits the KL is the
cross-entropy of the bits under the prior, Σ_j H(π_j) at best, which is largest when every bit
is on for half the documents. MDL therefore pays for balanced bits and prefers bits that are
rarely on (cheap to send), while a hash table wants exactly the balanced, high-entropy bits
that spread documents over buckets. The training's bit-balance term pulls the other way;
`code_cost_weight` (β) sets where between the two a model sits: β = 1 is the description
length itself, β → 0 a plain autoencoder with a learned error variance.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from hashindex.models.base import BinaryAutoencoder


class MDLAutoencoder(BinaryAutoencoder):
    def __init__(self, config):
        super().__init__(config)
        self.prior_logits = nn.Parameter(torch.zeros(config.bits))  # π_j = sigmoid(·)
        self.log_variance = nn.Parameter(torch.zeros(()))  # log σ² of the error

    def code_cost(self, logits: torch.Tensor) -> torch.Tensor:
        """Mean over the batch of KL(q(b|x) ‖ p(b)) in nats (bits-back coding)."""
        q = torch.sigmoid(logits)
        log_q, log_not_q = F.logsigmoid(logits), F.logsigmoid(-logits)
        log_p, log_not_p = F.logsigmoid(self.prior_logits), F.logsigmoid(-self.prior_logits)
        kl = q * (log_q - log_p) + (1 - q) * (log_not_q - log_not_p)
        return kl.sum(dim=1).mean()

    def error_cost(self, reconstruction: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Mean over the batch of −log N(x | x̂, σ²I) in nats."""
        squared = ((reconstruction - x) ** 2).sum(dim=1).mean()
        d = x.shape[1]
        return 0.5 * (d * (math.log(2 * math.pi) + self.log_variance)
                      + squared * torch.exp(-self.log_variance))

    def loss_function(self, out):
        d = out["x"].shape[1]
        code = self.code_cost(out["logits"]) / d
        error = self.error_cost(out["reconstruction"], out["x"]) / d
        return {"loss": error + self.options.code_cost_weight * code,
                "reconstruction": error, "code_cost": code,
                "penalty": self.options.code_cost_weight * code}
