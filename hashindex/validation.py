"""Checks on arrays and arguments entering the library, with messages that name the problem."""

from __future__ import annotations

import math
import numbers
import os

import numpy as np

from hashindex.errors import HashIndexError

MAX_ROWS_NAMED = 5  # rows (documents) an error names before "and N more"


def name_rows(rows) -> str:
    shown = ", ".join(str(int(r)) for r in rows[:MAX_ROWS_NAMED])
    more = f" and {len(rows) - MAX_ROWS_NAMED} more" if len(rows) > MAX_ROWS_NAMED else ""
    return f"{shown}{more}"


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


UNIT_TOLERANCE = 1e-4  # rows this close to unit length are kept bit for bit


def vector_norms(vectors: np.ndarray) -> np.ndarray:
    """float64 lengths of the rows (float32 squares overflow from about 1e19 up)."""
    return np.linalg.norm(np.asarray(vectors, dtype=np.float64), axis=1)


def unit_length(vectors: np.ndarray, norms: np.ndarray | None = None) -> np.ndarray:
    """float32 rows scaled to length 1, so that a dot product with a stored vector is the
    cosine the results show; rows with no length (refused by the callers) are left zero, rows
    already unit are returned unchanged (a text model's, bit for bit)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = vector_norms(vectors) if norms is None else norms
    off = np.abs(norms - 1.0) > UNIT_TOLERANCE
    if not off.any():
        return vectors
    out = vectors.copy()
    scale = np.where(norms[off] > 0, norms[off], 1.0)
    out[off] = (vectors[off].astype(np.float64) / scale[:, None]).astype(np.float32)
    return out


def unit_embeddings(embeddings, dim: int, what: str = "embeddings") -> np.ndarray:
    """Documents' float32 (n, dim) rows made unit length (check_embeddings' checks, and no
    all-zero row: it has no direction), so that their stored scores are cosines."""
    array = check_embeddings(embeddings, dim, what)
    norms = vector_norms(array)
    if (norms == 0).any():
        bad = np.flatnonzero(norms == 0)
        raise HashIndexError(f"{what} are all zeros in {len(bad)} row(s), first at row "
                             f"{int(bad[0])}: such a vector has no direction to compare by "
                             "cosine; drop or fix those rows")
    return unit_length(array, norms)


def check_query_embedding(embedding: np.ndarray) -> np.ndarray:
    """A float query made unit length, or an error where it has no direction (zero, NaN,
    inf): a cosine to it means nothing."""
    embedding = np.asarray(embedding, dtype=np.float32)
    if embedding.ndim == 1:  # the common case in ~2 µs: finite, and unit or scaled once
        square = float(np.dot(embedding, embedding))
        if 0.0 < square < 1e30:  # NaN, inf, zero and float32 overflow take the checks below
            norm = math.sqrt(float(np.dot(embedding.astype(np.float64),
                                          embedding.astype(np.float64))))
            if abs(norm - 1.0) <= UNIT_TOLERANCE:  # as unit_length: kept bit for bit
                return embedding
            return (embedding.astype(np.float64) / norm).astype(np.float32)
    if not np.isfinite(embedding).all():
        raise HashIndexError("query embedding holds NaN or inf; pass finite numbers")
    norm = vector_norms(embedding[None])
    if norm[0] == 0:
        raise HashIndexError("query embedding is all zeros: it has no direction to compare "
                             "by cosine; pass a non-zero vector")
    return unit_length(embedding[None], norm)[0]


# An argument's kind for check_arguments: (the types it takes, how the message names them).
PATH_TYPES = (str, os.PathLike)
TEXT = ((str,), "a str")
OPTIONAL_TEXT = ((str, type(None)), "a str or None")
PATH = (PATH_TYPES, "a path (a str or os.PathLike)")
OPTIONAL_PATH = ((*PATH_TYPES, type(None)), "a path (a str or os.PathLike) or None")
INTEGER = ((numbers.Integral,), "an integer")  # Python's and numpy's; bool is refused apart
FLAG = ((bool,), "True or False")


def check_argument(owner: str, name: str, value, kind: tuple[tuple, str]) -> None:
    """An error naming the argument where a Python caller passed the wrong kind of value (the
    command line's flags are typed by click): here, not as a TypeError deep in a build."""
    types, what = kind
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise HashIndexError(f"{owner}: {name}={shown} must be {what}, not a "
                             f"{type(value).__name__}")


def check_arguments(owner: str, values: dict, kinds: dict[str, tuple[tuple, str]]) -> None:
    """check_argument for each name in `kinds`."""
    for name, kind in kinds.items():
        check_argument(owner, name, values[name], kind)
