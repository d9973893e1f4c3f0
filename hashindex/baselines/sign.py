"""Sign of each embedding dimension: sentence-transformers' binary quantization.

The code length is the embedding dimension whatever `bits` asks for (384 for MiniLM)."""

import numpy as np

from hashindex.baselines.base import HashingMethod, sign_codes


class SignMethod(HashingMethod):
    name = "sign"
    description = "sign of every embedding dimension (bits = embedding dimension)"

    def fit(self, embeddings):
        self.bits = embeddings.shape[1] - embeddings.shape[1] % 8
        return self

    def encode(self, embeddings):
        return sign_codes(np.asarray(embeddings)[:, : self.bits])
