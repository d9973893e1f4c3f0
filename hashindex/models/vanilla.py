"""Undercomplete autoencoder: the code layer is the single hidden layer."""

from hashindex.models.base import BinaryAutoencoder


class VanillaAutoencoder(BinaryAutoencoder):
    """No hidden layers: the options have no widths."""
