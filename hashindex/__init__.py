"""hashindex: semantic hashing retrieval with binary-code autoencoders."""

__version__ = "0.1.0"
