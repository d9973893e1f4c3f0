"""Embeddings → packed binary codes with a trained model (inference only, numpy)."""

from __future__ import annotations

import numpy as np

from hashindex.code_encoder import CodeEncoder


def encode_codes(model, embeddings: np.ndarray) -> np.ndarray:
    """float32 (n, d) → uint8 (n, bits/8), bits = logits > 0, MSB first. Deterministic.

    `model` is a CodeEncoder or a trained torch model (its encoder is exported first)."""
    encoder = model if isinstance(model, CodeEncoder) else model.export_encoder()
    return encoder.encode(embeddings)
