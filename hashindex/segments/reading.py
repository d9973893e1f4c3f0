"""A generation's segments, opened and pinned, searched as one index.

Global row ids run through the segments in the manifest's order: segment i's local row r is
global row start_i + r. Every search backend answers per segment; SegmentedBackend merges the
answers into what one backend over all the rows would give (for exact backends, exactly that),
and deleted rows become a mask the engine filters with (engine.filtered_candidates).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hashindex.array_files import check_row_ids, load_array
from hashindex.backends import BACKENDS
from hashindex.errors import HashIndexError
from hashindex.search_backend import Backend, Candidates, empty_candidates, search_backend
from hashindex.store.layout import FAISS_DIR, TABLE_DIR, VECTORS_DIR
from hashindex.store.manifest import IndexManifest, Segment
from hashindex.table.keys import keys_to_codes
from hashindex.vectors import VectorStore


@dataclass
class OpenSegment:
    """One segment's files, opened (mapped or held) when the index is opened."""

    record: Segment
    start: int  # the global row of its first row
    table: Backend
    second_files: tuple  # the manifest backend's files, held open (Backend.open_files)
    vectors: VectorStore | None
    deleted: np.ndarray  # its deleted local rows, sorted int64

    def codes(self) -> np.ndarray:
        """Its codes by local row, rebuilt from its table."""
        table = self.table.table
        codes = np.empty((table.documents, table.code_bytes), dtype=np.uint8)
        codes[np.asarray(table.rows)] = keys_to_codes(np.asarray(table.keys), table.code_bytes)
        return codes

    def live_rows(self) -> np.ndarray:
        """Its local rows that are not deleted."""
        keep = np.ones(self.record.rows, dtype=bool)
        keep[self.deleted] = False
        return np.flatnonzero(keep)


def open_segments(root: Path, manifest: IndexManifest) -> list[OpenSegment]:
    bits = manifest.bits
    table_class = BACKENDS["table"].backend_class()
    second_class = BACKENDS[manifest.backend].backend_class()
    out, start = [], 0
    for record in manifest.segments:
        folder = root / record.folder if record.folder else root
        table = table_class.load(folder / TABLE_DIR, bits)
        if table.table.documents != record.rows:
            raise HashIndexError(
                f"index file {folder / TABLE_DIR} holds {table.table.documents} documents but "
                f"the manifest says {record.rows}; rebuild the index"
            )
        vectors = (VectorStore.load(folder / VECTORS_DIR, record.rows, manifest.dimension)
                   if manifest.store_embeddings else None)
        out.append(OpenSegment(record, start, table, second_class.open_files(folder / FAISS_DIR),
                               vectors, load_deletions(root, record)))
        start += record.rows
    return out


def live_mask(rows: int, deleted: list[tuple[int, np.ndarray]]) -> np.ndarray | None:
    """bool[rows]: the rows not deleted, from each segment's (first global row, its deleted
    local rows); None when no row is deleted (the engine then skips every mask)."""
    if not any(len(local) for _, local in deleted):
        return None
    live = np.ones(rows, dtype=bool)
    for start, local in deleted:
        live[start + local] = False
    return live


def load_deletions(root: Path, record: Segment) -> np.ndarray:
    """A segment's deleted local rows (sorted int64), checked against its record: row ids in
    range, as many as the manifest says."""
    if not record.deletions:
        return np.zeros(0, dtype=np.int64)
    path = root / record.deletions
    deleted = load_array(path, ndim=1, mmap=False)
    check_row_ids(path, deleted, record.rows)
    if len(deleted) != record.deleted:
        raise HashIndexError(f"index file {path} lists {len(deleted)} deleted rows but the "
                             f"manifest says {record.deleted}")
    return np.asarray(deleted, dtype=np.int64)


# Segments this small (an add's, typically) are searched as one: consecutive ones get one hash
# table, built from their codes when the index is opened (~10 ms per 100k codes), instead of one
# search each (a search's fixed cost, ~20-40 µs, times the number of segments). Measured at 1M
# documents + 9 adds of 10k: a top-10's table search 0.46 ms with a search per segment.
SMALL_SEGMENT_ROWS = 131_072


def table_parts(segments: list[OpenSegment], bits: int
                ) -> tuple[list[Backend], list[int], list[int]]:
    """The table backends to search, their first rows and their sizes: each large segment's
    own table, and one table per run of consecutive small segments."""
    table_class = BACKENDS["table"].backend_class()
    parts, starts, sizes, run = [], [], [], []

    def close_run():
        if len(run) == 1:
            parts.append(run[0].table)
        elif run:
            codes = np.concatenate([segment.codes() for segment in run])
            parts.append(table_class.build(codes, bits))
        if run:
            starts.append(run[0].start)
            sizes.append(sum(segment.record.rows for segment in run))
        run.clear()

    for segment in segments:
        if segment.record.rows < SMALL_SEGMENT_ROWS:
            run.append(segment)
            continue
        close_run()
        parts.append(segment.table)
        starts.append(segment.start)
        sizes.append(segment.record.rows)
    close_run()
    return parts, starts, sizes


def segment_of(starts: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Which segment each global row is in (starts: every segment's first row)."""
    return np.searchsorted(starts, rows, side="right") - 1


class SegmentedBackend(Backend):
    """One backend per segment, asked as one. Each part returns the rows within the smallest
    radius holding k of its own (ties complete), capped; the union then holds every row within
    its k-th smallest distance, since no part stopped short of it. The largest part is asked
    first and every later one only up to the k-th distance found so far: a small part then
    looks at a few codes instead of widening its own ball until it holds k. For exact backends
    the merged answer is exactly one backend's over all rows; approximate ones merge their
    candidates the same way."""

    def __init__(self, bits: int, parts: list[Backend], starts: list[int], sizes: list[int]):
        super().__init__(bits)
        order = np.argsort(sizes, kind="stable")[::-1]  # the largest first
        self.parts = [parts[i] for i in order]
        self.starts = [starts[i] for i in order]
        self.name = parts[0].name if parts else "table"

    @property
    def exact(self) -> bool:
        return all(part.exact for part in self.parts)

    @property
    def reads_vectors(self) -> bool:
        return bool(self.parts) and self.parts[0].reads_vectors

    def search(self, query_code, k, max_radius, options=None, embedding=None) -> Candidates:
        if not self.parts:
            return empty_candidates(True, max_radius)
        first = search_backend(self.parts[0], query_code, k, max_radius, options, embedding)
        if first.scores is not None:  # ranked by score: no Hamming cap applies
            return self.merged_by_score(
                [first] + [search_backend(part, query_code, k, max_radius, options, embedding)
                           for part in self.parts[1:]])
        rows, distances, found = [], [], []
        cap = max_radius
        for i, (part, start) in enumerate(zip(self.parts, self.starts)):
            answer = (first if i == 0 else
                      search_backend(part, query_code, k, cap, options, embedding))
            found.append(answer)
            rows.append(answer.rows + start)
            distances.append(answer.distances)
            if sum(len(d) for d in distances) >= k:  # no row beyond the k-th distance counts
                cap = min(cap, int(np.partition(np.concatenate(distances), k - 1)[k - 1]))
        rows, distances = np.concatenate(rows), np.concatenate(distances)
        if len(rows) >= k:
            radius = int(np.partition(distances, k - 1)[k - 1])
            keep = distances <= radius
            rows, distances = rows[keep], distances[keep]
        else:
            radius = min(f.radius for f in found)
        return Candidates.ranked(rows, distances, radius=radius,
                                 buckets=sum(f.buckets_touched for f in found),
                                 documents=sum(f.documents_touched for f in found),
                                 exact=all(f.exact for f in found),
                                 scanned=all(f.scanned for f in found))

    def merged_by_score(self, answers: list[Candidates]) -> Candidates:
        """Parts that ranked their rows by score (the graph's walk=vectors): every part's
        rows, best score first."""
        scored = [(a, start) for a, start in zip(answers, self.starts) if a.scores is not None]
        answers = [a for a, _ in scored]  # an empty segment answers without scores
        rows = np.concatenate([a.rows + start for a, start in scored])
        distances = np.concatenate([a.distances for a in answers])
        scores = np.concatenate([a.scores for a in answers])
        order = np.lexsort((rows, -scores))
        return Candidates(rows[order], distances[order],
                          radius=int(distances.max()) if len(distances) else 0,
                          buckets_touched=sum(a.buckets_touched for a in answers),
                          documents_touched=sum(a.documents_touched for a in answers),
                          exact=False, scores=scores[order])


class VectorStack:
    """Several segments' VectorStores read by global row (VectorStore's reading methods)."""

    def __init__(self, stores: list[VectorStore], starts: list[int]):
        self.stores = stores
        self.starts = np.asarray(starts, dtype=np.int64)

    @property
    def dtype(self) -> str:
        return self.stores[0].dtype

    @property
    def dimension(self) -> int:
        return self.stores[0].dimension

    def __len__(self) -> int:
        return sum(len(store) for store in self.stores)

    def split(self, rows: np.ndarray):
        """(segment, positions in rows, local rows) for each segment the rows touch."""
        rows = np.asarray(rows, dtype=np.int64)
        owner = segment_of(self.starts, rows)
        for segment in np.unique(owner):
            where = np.flatnonzero(owner == segment)
            yield int(segment), where, rows[where] - self.starts[segment]

    def rows(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), self.dimension), dtype=np.float32)
        for segment, where, local in self.split(rows):
            out[where] = self.stores[segment].rows(local)
        return out

    def scores(self, rows: np.ndarray, query: np.ndarray) -> np.ndarray:
        out = np.empty(len(rows), dtype=np.float32)
        for segment, where, local in self.split(rows):
            out[where] = self.stores[segment].scores(local, query)
        return out

    def scores_batch(self, rows: np.ndarray, offsets: np.ndarray,
                     queries: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty(len(rows), dtype=np.float32)
        query_of = np.repeat(np.arange(len(queries)), np.diff(offsets))
        for segment, where, local in self.split(rows):
            counts = np.bincount(query_of[where], minlength=len(queries))
            part_offsets = np.concatenate([[0], np.cumsum(counts)])
            out[where] = self.stores[segment].scores_batch(local, part_offsets, queries)
        return out


def one_store(vectors):
    """One VectorStore over every row (a stack of segments' int8 stores joined), for a
    backend built on the fly over all rows; None where there is none to join."""
    if vectors is None or isinstance(vectors, VectorStore):
        return vectors
    if any(store.scales is None for store in vectors.stores):
        return None
    return VectorStore(np.concatenate([np.asarray(s.vectors) for s in vectors.stores]),
                       np.concatenate([np.asarray(s.scales) for s in vectors.stores]))


def merged(parts: list[Backend], starts: list[int], sizes: list[int], bits: int) -> Backend:
    """One segment's backend as itself (no merging cost); several as one SegmentedBackend."""
    return parts[0] if len(parts) == 1 else SegmentedBackend(bits, parts, starts, sizes)
