"""Embeddings → packed binary codes with a trained model (inference only)."""

from __future__ import annotations

import numpy as np
import torch

from hashindex.codes import pack_bits
from hashindex.models.base import BinaryAutoencoder
from hashindex.validation import check_embeddings


def encode_codes(
    model: BinaryAutoencoder, embeddings: np.ndarray, batch_size: int = 8_192
) -> np.ndarray:
    """float32 (n, d) → uint8 (n, bits/8), bits = logits > 0, MSB first. Deterministic.

    Batches of a few thousand rows keep activations in cache: measured 2× faster than 32k.
    """
    embeddings = check_embeddings(embeddings, dim=model.config.input_dim)
    out = np.empty((len(embeddings), model.config.bits // 8), dtype=np.uint8)
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(embeddings), batch_size):
            batch = torch.tensor(embeddings[start : start + batch_size])  # copies read-only maps
            bits = (model.encode(batch) > 0).numpy()
            out[start : start + batch_size] = pack_bits(bits)
    return out
