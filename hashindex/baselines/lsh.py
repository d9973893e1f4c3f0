"""Random-hyperplane LSH (Charikar 2002) through FAISS IndexLSH with a random rotation."""

import faiss
import numpy as np

from hashindex.baselines.base import HashingMethod


class LSHMethod(HashingMethod):
    name = "lsh"
    description = "random-hyperplane LSH (FAISS IndexLSH, rotated, zero thresholds)"

    def fit(self, embeddings):
        self.index = faiss.IndexLSH(embeddings.shape[1], self.bits, True, False)
        # IndexLSH draws its rotation from a fixed seed; offset it so seeds differ
        self.index.rrot.init(1234 + self.seed)
        self.index.train(np.ascontiguousarray(embeddings, dtype=np.float32))
        return self

    def encode(self, embeddings):
        return self.index.sa_encode(np.ascontiguousarray(embeddings, dtype=np.float32))
