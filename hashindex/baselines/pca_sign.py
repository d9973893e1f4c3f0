"""PCA to `bits` directions, then sign: the PCA-reduced binary quantization."""

from hashindex.baselines.base import HashingMethod, pca, sign_codes


class PCASignMethod(HashingMethod):
    name = "pca-sign"
    description = "top principal directions, then sign (PCAH)"

    def fit(self, embeddings):
        self.mean, self.projection = pca(embeddings, self.bits)
        return self

    def encode(self, embeddings):
        return sign_codes((embeddings - self.mean) @ self.projection)
