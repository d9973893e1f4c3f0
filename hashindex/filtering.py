"""Searches restricted to some rows: a metadata filter, deleted rows, a liked document left
out. The backend is asked for more than wanted (by the filter's selectivity) and widened until
enough pass; past FILTER_SCAN_SHARE of the index, the admitted rows alone are scanned."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import replace

import numpy as np

from hashindex.bitops import code_words
from hashindex.filters import MetadataFilter
from hashindex.search_backend import Candidates, empty_candidates, search_backend

# A filtered search widens the ball until k documents pass; once it would gather this share of
# the index, scanning the codes of the admitted rows alone is cheaper (and exact).
FILTER_SCAN_SHARE = 0.25
FILTER_MASKS_KEPT = 32  # recent filters' row masks, kept for a service's repeated filters


class FilterMasks:
    """bool[rows] of the live rows a filter admits, for one pinned build: the columns a
    filter reads and the recent filters' masks are kept."""

    def __init__(self, shards, live: np.ndarray | None):
        self.shards = shards
        self.live = live
        self.columns: dict[str, object] = {}
        self.masks: OrderedDict[MetadataFilter, np.ndarray] = OrderedDict()
        self.lock = threading.Lock()  # a service filters from many threads

    def admitted(self, where: MetadataFilter) -> np.ndarray:
        with self.lock:
            mask = self.masks.get(where)
            if mask is not None:
                self.masks.move_to_end(where)
                return mask

            def column(name):
                if name not in self.columns:
                    self.columns[name] = self.shards.column_array(name)
                return self.columns[name]

            mask = where.mask(column)
            if self.live is not None:
                mask &= self.live
            self.masks[where] = mask
            if len(self.masks) > FILTER_MASKS_KEPT:
                self.masks.popitem(last=False)
            return mask


def filtered_candidates(index, code, request, admitted: np.ndarray, radius_cap: int,
                        embedding: np.ndarray | None = None) -> Candidates:
    """Ask the backend for more candidates than wanted (by the filter's selectivity), keep
    the admitted ones, and widen 4× until enough pass or the ball is the cap; once that would
    gather FILTER_SCAN_SHARE of the index, scan the admitted rows' codes."""
    total = index.row_count
    count = len(index) if admitted is index.live else int(np.count_nonzero(admitted))
    wanted = request.wanted
    backend = index.backend(request.backend)
    if count == 0:
        return replace(empty_candidates(backend.exact, radius_cap), filtered=(0, 0))
    by_cosine = request.rerank and embedding is not None and index.vectors is not None
    if request.backend == "exact" and by_cosine:  # a scan anyway: only the admitted rows
        return scan_admitted(index, code, np.flatnonzero(admitted), wanted, radius_cap,
                             embedding)
    ask = math.ceil(wanted * total / count * 1.25)
    while ask < FILTER_SCAN_SHARE * total:
        found = search_backend(backend, code, ask, radius_cap, request.knobs, embedding)
        keep = admitted[found.rows]
        passed = int(np.count_nonzero(keep))
        if passed >= wanted or found.radius >= radius_cap or len(found.rows) >= total:
            examined = len(found.rows)  # a fresh answer of this search: narrowed in place
            found.rows, found.distances = found.rows[keep], found.distances[keep]
            if found.scores is not None:
                found.scores = found.scores[keep]
            found.filtered = (examined, passed)
            return found
        ask *= 4
    return scan_admitted(index, code, np.flatnonzero(admitted), wanted, radius_cap,
                         embedding if by_cosine else None)


def scan_admitted(index, code, rows: np.ndarray, wanted: int, radius_cap: int,
                  embedding: np.ndarray | None = None) -> Candidates:
    """Exact: every admitted row's distance; the smallest radius holding `wanted` of them
    (ties complete), capped. With an `embedding` the `wanted` best by cosine instead (within
    the radius cap), ranked: what the hits are ordered by."""
    query = code_words(np.asarray(code, dtype=np.uint8)[None])
    distances = np.bitwise_count(code_words(index.all_codes()[rows]) ^ query).sum(
        axis=1, dtype=np.int64)
    if embedding is not None:
        scores = index.vectors.scores(rows, embedding)
        inside = np.flatnonzero(distances <= radius_cap)
        top = inside[np.lexsort((rows[inside], -scores[inside]))][:wanted]
        return Candidates(rows[top], distances[top],
                          radius=int(distances[top].max()) if len(top) else radius_cap,
                          buckets_touched=0, documents_touched=len(rows), exact=True,
                          scanned=True, filtered=(len(rows), len(inside)), scores=scores[top])
    radius = radius_cap
    if len(rows) > wanted:
        radius = min(radius_cap, int(np.partition(distances, wanted - 1)[wanted - 1]))
    keep = distances <= radius
    found = Candidates.ranked(rows[keep], distances[keep], radius=radius, buckets=0,
                              documents=len(rows), exact=True, scanned=True)
    return replace(found, filtered=(len(rows), int(np.count_nonzero(keep))))
