"""Deep autoencoder with configurable widths (default 512, 256 between input and code)."""

from hashindex.models.base import BinaryAutoencoder


class DeepAutoencoder(BinaryAutoencoder):
    name = "deep"
    description = "deep MLP encoder/decoder (default widths 512→256) around the code layer"
    default_hidden = (512, 256)
