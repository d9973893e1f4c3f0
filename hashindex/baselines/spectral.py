"""Spectral hashing (Weiss, Torralba & Fergus, NIPS 2008): PCA, then for each code bit a
sinusoidal eigenfunction of the 1-D Laplacian along one principal direction, thresholded at 0.

The data in PCA space is treated as uniform on a box [a_j, b_j]; along direction j the
eigenfunctions are sin(π/2 + kπ(x − a_j)/(b_j − a_j)) with eigenvalues growing with
(k/(b_j − a_j))²; the `bits` smallest (the constant one excluded) become the bits. Wide
directions thus get several bits (modes), narrow ones none.
"""

from __future__ import annotations

import numpy as np

from hashindex.baselines.base import HashingMethod, pca


class SpectralMethod(HashingMethod):
    name = "spectral"
    description = "spectral hashing: PCA + the smallest sinusoidal Laplacian eigenfunctions"

    def fit(self, embeddings):
        components = min(self.bits, embeddings.shape[1])
        self.mean, self.projection = pca(embeddings, components)
        projected = (embeddings - self.mean) @ self.projection
        self.low = projected.min(axis=0) - 1e-6
        span = projected.max(axis=0) + 1e-6 - self.low
        max_mode = np.ceil((self.bits + 1) * span / span.max()).astype(int)
        modes = [np.zeros(components, dtype=np.int64)]  # the constant mode, dropped below
        for j, top in enumerate(max_mode):
            for k in range(1, top):
                mode = np.zeros(components, dtype=np.int64)
                mode[j] = k
                modes.append(mode)
        modes = np.array(modes)
        eigenvalues = ((modes * np.pi / span) ** 2).sum(axis=1)
        order = np.argsort(eigenvalues, kind="stable")
        self.modes = modes[order[1 : self.bits + 1]]
        self.span = span
        return self

    def encode(self, embeddings):
        projected = (embeddings - self.mean) @ self.projection - self.low
        omegas = self.modes * np.pi / self.span  # (bits, components)
        bits = np.empty((len(embeddings), len(self.modes)), dtype=bool)
        for i, omega in enumerate(omegas):
            used = omega > 0  # one direction per mode here: the product is that sine
            bits[:, i] = np.prod(np.sin(projected[:, used] * omega[used] + np.pi / 2), axis=1) > 0
        return np.packbits(bits, axis=1, bitorder="big")
