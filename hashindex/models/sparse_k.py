"""k-sparse autoencoder (Makhzani & Frey 2013): only the k largest hidden activations survive."""

import torch

from hashindex.models.base import BinaryAutoencoder


class KSparseAutoencoder(BinaryAutoencoder):
    def transform_hidden(self, hidden: torch.Tensor) -> torch.Tensor:
        values, indices = hidden.topk(self.options.sparse_k, dim=-1)
        # scatter keeps the graph only through the kept values: the others get no gradient
        return torch.zeros_like(hidden).scatter(-1, indices, values)

    def export_extras(self) -> dict:
        return {"sparse_k": self.options.sparse_k}
