"""Concrete autoencoder (Abid et al. 2019): a concrete selector layer picks a set number of input
features; its temperature is annealed exponentially so the selection becomes discrete.

A uniqueness penalty (Strypsteen & Bertrand 2021) discourages two selector rows from settling on
the same feature: Σ_f relu(Σ_j p_j(f) − 1).
"""

import numpy as np
import torch
from torch import nn

from hashindex.errors import HashIndexError
from hashindex.models.base import BinaryAutoencoder


class ConcreteAutoencoder(BinaryAutoencoder):
    def __init__(self, config):
        features = config.options.concrete_features
        if features > config.input_dim:
            raise HashIndexError(
                f"option concrete_features={features} is out of range: it must be from 1 to "
                f"the embedding dimension {config.input_dim}"
            )
        super().__init__(config)
        self.selector_logits = nn.Parameter(1e-2 * torch.randn(features, config.input_dim))
        self.register_buffer("temperature",
                             torch.tensor(config.options.concrete_start_temperature))

    def encoder_input_dim(self) -> int:
        return self.config.options.concrete_features

    def selection_weights(self) -> torch.Tensor:
        """(features, input_dim): a Gumbel-softmax sample in training, one-hot argmax at eval."""
        if not self.training:
            return nn.functional.one_hot(
                self.selected_features(), self.config.input_dim
            ).to(self.selector_logits.dtype)
        uniform = torch.rand_like(self.selector_logits).clamp(1e-9, 1 - 1e-9)
        gumbel = -torch.log(-torch.log(uniform))
        return torch.softmax((self.selector_logits + gumbel) / self.temperature, dim=-1)

    def selected_features(self) -> torch.Tensor:
        return self.selector_logits.argmax(dim=-1)

    def export_extras(self) -> dict:
        return {"selected": self.selected_features().numpy().astype(np.int64)}

    def select_inputs(self, x):
        return x @ self.selection_weights().T

    def on_epoch(self, epoch, epochs):
        start = self.options.concrete_start_temperature
        end = self.options.concrete_end_temperature
        progress = epoch / max(epochs - 1, 1)
        self.temperature.fill_(start * (end / start) ** progress)

    @property
    def can_stop_early(self) -> bool:
        return False  # the annealing schedule must run to its cold end

    def penalty(self, out):
        probabilities = torch.softmax(self.selector_logits / self.temperature, dim=-1)
        overlap = torch.relu(probabilities.sum(dim=0) - 1.0).sum()
        return self.options.concrete_unique_weight * overlap
