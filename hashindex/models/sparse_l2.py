"""Autoencoder with an L2 activity penalty on the hidden layer (small, spread activations)."""

from hashindex.models.base import BinaryAutoencoder


class L2SparseAutoencoder(BinaryAutoencoder):

    def penalty(self, out):
        return self.options.sparse_weight * (out["hidden"] ** 2).sum(dim=1).mean()
