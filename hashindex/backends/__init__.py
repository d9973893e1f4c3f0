"""The registry of search backends: one line each, selected by name.

A line names the backend, says what it is and whether it is exact, gives its build-time and
query-time options (backends/options.py) and where its class lives (imported only when it is
used, so listing backends or checking a flag loads neither FAISS nor numba). Adding a backend:
its file, its options classes if it has knobs, and one line here.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

from hashindex.backends.options import (
    GraphBuildOptions,
    GraphSearchOptions,
    HashBuildOptions,
    HNSWBuildOptions,
    HNSWSearchOptions,
    IVFBuildOptions,
    IVFSearchOptions,
    MultiHashBuildOptions,
    NoOptions,
    TableBuildOptions,
)
from hashindex.errors import HashIndexError
from hashindex.options import Options, parse_pairs


@dataclass(frozen=True)
class BackendEntry:
    name: str
    description: str
    exact: bool
    module: str  # "package.module:Class"
    build_options: type = NoOptions
    search_options: type = NoOptions

    def backend_class(self):
        module, _, name = self.module.partition(":")
        return getattr(import_module(module), name)

    def knobs(self) -> list[str]:
        return self.build_options.names() + self.search_options.names()

    def parse(self, pairs: list[str], flag: str = "--backend-option") -> dict:
        """`KEY=VALUE` strings → {knob: typed value} (build and query knobs alike; where each
        may be set is checked by split_options and query_options)."""
        return parse_pairs((self.build_options, self.search_options), list(pairs), flag,
                           f"backend {self.name}")

    def split_options(self, values: dict) -> tuple[Options, Options]:
        """{knob: value} → (build options, search options), each checked."""
        unknown = sorted(set(values) - set(self.knobs()))
        if unknown:
            raise HashIndexError(f"backend {self.name} has no option(s) {', '.join(unknown)}; "
                                 f"its options are: {', '.join(self.knobs()) or '(none)'}")
        build = {k: v for k, v in values.items() if k in self.build_options.names()}
        search = {k: v for k, v in values.items() if k in self.search_options.names()}
        return self.build_options(**build), self.search_options(**search)

    def query_options(self, stored: dict, overrides: dict) -> Options:
        """The search options of a query: the index's stored defaults, then the overrides."""
        fixed = sorted(set(overrides) & set(self.build_options.names()))
        if fixed:
            raise HashIndexError(f"backend {self.name}'s option {fixed[0]} is set when the index "
                                 f"is built (build --backend-option {fixed[0]}=...); a query can "
                                 f"set: {', '.join(self.search_options.names()) or '(none)'}")
        own = {k: v for k, v in stored.items() if k in self.search_options.names()}
        return self.search_options.from_dict({**own, **overrides}, f"backend {self.name}")


BACKENDS: dict[str, BackendEntry] = {b.name: b for b in (
    BackendEntry("table", "hashindex hash table: exact code bucket, then Hamming neighbours by bit "
                 "flips and multi-index hashing", True, "hashindex.table.backend:TableBackend",
                 TableBuildOptions),
    BackendEntry("flat", "FAISS IndexBinaryFlat: exact brute-force Hamming scan (SIMD popcount)",
                 True, "hashindex.backends.flat:FlatBackend"),
    BackendEntry("hash", "FAISS IndexBinaryHash: table on a code prefix, probed by bit flips",
                 True, "hashindex.backends.hash:HashBackend", HashBuildOptions),
    BackendEntry("multihash", "FAISS IndexBinaryMultiHash: multi-index hashing over substrings",
                 True, "hashindex.backends.multihash:MultiHashBackend", MultiHashBuildOptions),
    BackendEntry("ivf", "FAISS IndexBinaryIVF: scans the nprobe nearest inverted lists", False,
                 "hashindex.backends.ivf:IVFBackend", IVFBuildOptions, IVFSearchOptions),
    BackendEntry("hnsw", "FAISS IndexBinaryHNSW: graph search, k nearest found greedily", False,
                 "hashindex.backends.hnsw:HNSWBackend", HNSWBuildOptions, HNSWSearchOptions),
    BackendEntry("exact", "scans every stored vector: the exact cosine ranking (small "
                 "indexes, and the reference the others are tuned against)", True,
                 "hashindex.backends.exact:ExactBackend"),
    BackendEntry("graph", "HNSW graph built over the embeddings, walked by the stored int8 "
                 "vectors (walk=vectors) or by the codes' Hamming distance (walk=codes, then "
                 "re-ranked)", False,
                 "hashindex.backends.graph:GraphBackend", GraphBuildOptions, GraphSearchOptions),
)}
FAISS_BACKENDS = tuple(name for name in BACKENDS if name != "table")
DEFAULT_FAISS_BACKEND = "flat"


def check_backend(name: str, allowed: tuple[str, ...] = tuple(BACKENDS)) -> str:
    if name not in allowed:
        raise HashIndexError(f"unknown backend {name!r}; choose one of {', '.join(allowed)}")
    return name


def backend_class(name: str):
    """The backend's class (its module imported now)."""
    return BACKENDS[check_backend(name)].backend_class()


__all__ = ["BACKENDS", "FAISS_BACKENDS", "DEFAULT_FAISS_BACKEND", "BackendEntry",
           "backend_class", "check_backend"]
