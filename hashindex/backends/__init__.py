"""The registry of search backends: one file each, one line here, selected by name."""

from __future__ import annotations

from hashindex.backends.base import Backend, Candidates
from hashindex.backends.flat import FlatBackend
from hashindex.backends.hash import HashBackend
from hashindex.backends.hnsw import HNSWBackend
from hashindex.backends.ivf import IVFBackend
from hashindex.backends.multihash import MultiHashBackend
from hashindex.backends.table import TableBackend
from hashindex.errors import HashIndexError

BACKENDS: dict[str, type[Backend]] = {
    cls.name: cls
    for cls in (TableBackend, FlatBackend, HashBackend, MultiHashBackend, IVFBackend, HNSWBackend)
}
FAISS_BACKENDS = tuple(name for name in BACKENDS if name != TableBackend.name)
DEFAULT_FAISS_BACKEND = "flat"


def check_backend(name: str, allowed: tuple[str, ...] = tuple(BACKENDS)) -> str:
    if name not in allowed:
        raise HashIndexError(f"unknown backend {name!r}; choose one of {', '.join(allowed)}")
    return name


__all__ = ["BACKENDS", "FAISS_BACKENDS", "DEFAULT_FAISS_BACKEND", "Backend", "Candidates",
           "check_backend"]
