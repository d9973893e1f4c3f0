"""Iterative quantization (Gong & Lazebnik 2011): PCA to `bits` dimensions, then an orthogonal
rotation R alternating B = sign(VR) and the Procrustes solution R = argmin ‖B − VR‖_F."""

from __future__ import annotations

import numpy as np

from hashindex.baselines.base import HashingMethod, pca, sign_codes


def itq_rotation(projected: np.ndarray, iterations: int, seed: int) -> tuple[np.ndarray, list]:
    """The rotation and the quantization loss ‖B − VR‖²_F before each update."""
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.normal(size=(projected.shape[1],) * 2))
    losses = []
    for _ in range(iterations):
        rotated = projected @ rotation
        binary = np.where(rotated >= 0, 1.0, -1.0)
        losses.append(float(((binary - rotated) ** 2).sum()))
        u, _, vt = np.linalg.svd(binary.T @ projected)
        rotation = (u @ vt).T
    return rotation.astype(np.float32), losses


class ITQMethod(HashingMethod):
    name = "itq"
    description = "PCA + iterative quantization rotation (Gong & Lazebnik)"
    iterations = 50

    def fit(self, embeddings):
        self.mean, self.projection = pca(embeddings, self.bits)
        projected = (embeddings - self.mean) @ self.projection
        self.rotation, self.losses = itq_rotation(projected, self.iterations, self.seed)
        return self

    def encode(self, embeddings):
        return sign_codes((embeddings - self.mean) @ self.projection @ self.rotation)
