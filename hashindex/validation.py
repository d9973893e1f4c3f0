"""Checks on arrays entering the library, with messages that name the problem."""

from __future__ import annotations

import numpy as np

from hashindex.errors import HashIndexError


def check_embeddings(embeddings, dim: int | None = None, what: str = "embeddings") -> np.ndarray:
    """Return a C-contiguous float32 (n, d) array, or raise naming the first bad row."""
    array = np.ascontiguousarray(embeddings, dtype=np.float32)
    if array.ndim != 2:
        raise HashIndexError(f"{what} must be a 2-d array (n, dim), got shape {array.shape}")
    if dim is not None and array.shape[1] != dim:
        raise HashIndexError(
            f"{what} have dimension {array.shape[1]}, but the model expects {dim}"
        )
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise HashIndexError(
            f"{what} contain NaN or inf in {len(bad)} row(s), first at row {int(bad[0])}; "
            "drop or fix those rows"
        )
    return array
