"""Each backend's knobs: options fixed when its index is built, and options a query may set.

A build stores its backend's values in the manifest (`backend_options`) as the index's
defaults; a query may override the search options (`--backend-option nprobe=64`, or
`backend_options={"nprobe": 64}` in Python, the same names the HTTP service takes).
"""

from __future__ import annotations

from dataclasses import dataclass

from hashindex.options import Options, option

MAX_BEAM = 1 << 16  # a beam wider than this holds more than any search needs (and FAISS's
# int would overflow long before a beam of 2**31)


@dataclass(frozen=True)
class NoOptions(Options):
    pass


@dataclass(frozen=True)
class TableBuildOptions(Options):
    substring_index: bool = option(True, "keep the multi-index over 16-bit substrings (fast k-NN "
                                   "at 64+ bits, built from 65 536 distinct codes up)")


@dataclass(frozen=True)
class HashBuildOptions(Options):
    prefix_bits: int = option(20, "bits of the code prefix the hash table is keyed on (at most "
                              "the code's bits)", low=1, high=64)


@dataclass(frozen=True)
class MultiHashBuildOptions(Options):
    substring_bits: int = option(16, "bits per substring table (bits / substring_bits tables; "
                                 "at most the code's bits)", low=1, high=32)


@dataclass(frozen=True)
class IVFBuildOptions(Options):
    nlist: int = option(0, "inverted lists (0: the square root of the document count; at most "
                        "one per document: a smaller segment gets fewer)", low=0, high=1 << 20)


@dataclass(frozen=True)
class IVFSearchOptions(Options):
    nprobe: int = option(16, "lists scanned per query (more: better recall, slower)", low=1,
                         high=1 << 20)


@dataclass(frozen=True)
class HNSWBuildOptions(Options):
    neighbours: int = option(32, "graph neighbours per node (HNSW's M)", low=2, high=512)
    ef_construction: int = option(40, "candidate list size while building", low=1,
                                  high=MAX_BEAM)


@dataclass(frozen=True)
class GraphBuildOptions(Options):
    neighbours: int = option(32, "graph neighbours per node (HNSW's M)", low=2, high=512)
    ef_construction: int = option(200, "candidate list size while building", low=1,
                                  high=MAX_BEAM)


@dataclass(frozen=True)
class GraphSearchOptions(Options):
    ef_search: int = option(64, "beam width per query: the candidates re-ranked (at least k "
                            "or the re-rank budget is used)", low=1, high=MAX_BEAM)
    walk: str = option("auto", "what the beam compares: codes (Hamming distance), vectors "
                       "(the float query against the stored int8 vectors: a narrower beam "
                       "for the same recall), auto (vectors where the index stores int8 "
                       "vectors and the query is text or an embedding)",
                       choices=("auto", "codes", "vectors"))


@dataclass(frozen=True)
class HNSWSearchOptions(Options):
    ef_search: int = option(64, "candidate list size per query (at least k is used)", low=1,
                            high=MAX_BEAM)
