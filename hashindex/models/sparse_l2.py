"""Autoencoder with an L2 activity penalty on the hidden layer (small, spread activations)."""

from hashindex.models.base import BinaryAutoencoder


class L2SparseAutoencoder(BinaryAutoencoder):
    name = "sparse-l2"
    description = "ReLU hidden layer with an L2 activity penalty λ·Σh² (shrinks activations)"
    default_hidden = (512,)
    default_activation = "relu"

    def penalty(self, out):
        return self.config.sparse_weight * (out["hidden"] ** 2).sum(dim=1).mean()
