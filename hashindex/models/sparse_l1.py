"""Sparse autoencoder with an L1 activity penalty on the hidden layer."""

from hashindex.models.base import BinaryAutoencoder


class L1SparseAutoencoder(BinaryAutoencoder):

    def penalty(self, out):
        return self.options.sparse_weight * out["hidden"].abs().sum(dim=1).mean()
