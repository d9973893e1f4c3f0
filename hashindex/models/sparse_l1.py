"""Sparse autoencoder with an L1 activity penalty on the hidden layer."""

from hashindex.models.base import BinaryAutoencoder


class L1SparseAutoencoder(BinaryAutoencoder):
    name = "sparse-l1"
    description = "ReLU hidden layer with an L1 activity penalty λ·Σ|h| (sparse activations)"
    default_hidden = (512,)
    default_activation = "relu"

    def penalty(self, out):
        return self.config.sparse_weight * out["hidden"].abs().sum(dim=1).mean()
