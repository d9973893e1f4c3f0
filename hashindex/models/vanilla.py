"""Undercomplete autoencoder: the code layer is the single hidden layer."""

from hashindex.models.base import BinaryAutoencoder


class VanillaAutoencoder(BinaryAutoencoder):
    name = "vanilla"
    description = "undercomplete autoencoder, one hidden layer: embedding → code → embedding"
    default_hidden = ()
