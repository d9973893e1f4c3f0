"""Deep autoencoder with configurable widths (default 256, 128 between input and code).

The default is narrower than the classic 512→256 so that encoding keeps up with writing:
about 2.5× fewer multiply-adds per document (see benchmarks/results/build_speed.md).
"""

from hashindex.models.base import BinaryAutoencoder


class DeepAutoencoder(BinaryAutoencoder):
    """The base model with the widths of DeepOptions."""
