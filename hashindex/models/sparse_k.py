"""k-sparse autoencoder (Makhzani & Frey 2013): only the k largest hidden activations survive."""

import torch

from hashindex.errors import HashIndexError
from hashindex.models.base import BinaryAutoencoder


class KSparseAutoencoder(BinaryAutoencoder):
    name = "sparse-k"
    description = "k-sparse hidden layer: keeps the top-k activations, gradient only through them"
    default_hidden = (512,)
    default_activation = "relu"

    def __init__(self, config):
        super().__init__(config)
        width = self.hidden_widths[-1] if self.hidden_widths else 0
        if not 1 <= config.sparse_k <= width:
            raise HashIndexError(
                f"sparse_k={config.sparse_k} must be from 1 to the hidden width {width}"
            )

    def transform_hidden(self, hidden: torch.Tensor) -> torch.Tensor:
        values, indices = hidden.topk(self.config.sparse_k, dim=-1)
        # scatter keeps the graph only through the kept values: the others get no gradient
        return torch.zeros_like(hidden).scatter(-1, indices, values)
