"""Shared plumbing for the FAISS binary backends: index I/O and radius-by-radius search."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from hashindex.array_files import check_row_ids, damaged, load_array
from hashindex.errors import HashIndexError
from hashindex.search_backend import Backend, Candidates, empty_candidates
from hashindex.store.layout import FAISS_IDS_FILE as IDS_FILE
from hashindex.store.layout import FAISS_INDEX_FILE as INDEX_FILE


class FaissBackend(Backend):
    """Holds a faiss.IndexBinary and the id map from FAISS labels to row ids."""

    def __init__(self, bits: int, index, ids: np.ndarray):
        super().__init__(bits)
        self.index = index
        self.ids = ids

    @classmethod
    def make_index(cls, bits: int, count: int, options):
        raise NotImplementedError

    @classmethod
    def build(cls, codes, bits, options=None, embeddings=None):
        from hashindex.backends import BACKENDS

        codes = np.ascontiguousarray(codes, dtype=np.uint8)
        options = options or BACKENDS[cls.name].build_options()
        index = cls.make_index(bits, len(codes), options)
        if not index.is_trained:  # an empty collection trains on one zero code
            index.train(codes if len(codes) else np.zeros((1, bits // 8), dtype=np.uint8))
        if len(codes):
            index.add(codes)
        return cls(bits, index, np.arange(len(codes), dtype=np.int64))

    def save(self, directory: Path) -> list[Path]:
        directory.mkdir(parents=True, exist_ok=True)
        faiss.write_index_binary(self.index, str(directory / INDEX_FILE))
        np.save(directory / IDS_FILE, self.ids)
        return [directory / INDEX_FILE, directory / IDS_FILE]

    @staticmethod
    def open_files(directory: Path) -> tuple:
        """The index file held open and the id map mapped: what `from_files` reads later, so a
        reader keeps the build it opened even when a rebuild replaces these paths. Both are
        checked as far as is cheap: the id map's header and range, the index's header."""
        ids = load_array(directory / IDS_FILE, dtypes=(np.int64,), ndim=1)
        check_row_ids(directory / IDS_FILE, ids, len(ids))
        handle = open(directory / INDEX_FILE, "rb")
        try:
            check_header(handle, len(ids))
        except HashIndexError:
            handle.close()
            raise
        return handle, ids

    @classmethod
    def from_files(cls, files: tuple, bits: int):
        handle, ids = files
        handle.seek(0)
        try:
            index = faiss.read_index_binary(faiss.PyCallbackIOReader(handle.read))
        except RuntimeError as error:  # FAISS's own checks of what it reads
            raise damaged(Path(handle.name), f"FAISS cannot read it: "
                                             f"{faiss_reason(error)}") from None
        if index.d != bits or index.ntotal != len(ids):
            raise damaged(Path(handle.name), f"it holds {index.ntotal} codes of {index.d} bits, "
                                             f"not {len(ids)} of {bits}")
        return cls(bits, index, np.asarray(ids))

    def prepare(self, radius: int) -> None:
        """Set per-radius search parameters (flips) before a range search at `radius`."""

    def range_within(self, query: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
        """(labels, distances) of every code at distance ≤ radius (FAISS ranges are strict)."""
        self.prepare(radius)
        _, distances, labels = self.index.range_search(query, radius + 1)
        return labels.astype(np.int64), distances.astype(np.int64)

    def knn(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        distances, labels = self.index.search(query, min(k, max(self.index.ntotal, 1)))
        keep = labels[0] >= 0
        return labels[0][keep].astype(np.int64), distances[0][keep].astype(np.int64)

    def knn_within(self, query: np.ndarray, k: int, max_radius: int):
        """The k nearest found by the index, cut at max_radius, and the radius they reach."""
        labels, distances = self.knn(query, k)
        keep = distances <= max_radius
        labels, distances = labels[keep], distances[keep]
        return labels, distances, int(distances.max()) if len(distances) else 0

    def finish(self, labels, distances, radius, touched, scanned=False) -> Candidates:
        order = np.lexsort((labels, distances))
        return Candidates(
            rows=self.ids[labels[order]],
            distances=distances[order],
            radius=int(radius),
            buckets_touched=int(touched),
            documents_touched=int(touched),
            exact=self.exact,
            scanned=scanned,
        )


class RangeSearchBackend(FaissBackend):
    """Exact backends: range searches at growing radii until one holds k codes; its k-th
    distance is the answer's radius and the codes within it (ties complete) the answer."""

    def search(self, query_code, k, max_radius, options=None):
        if self.index.ntotal == 0:
            return empty_candidates(self.exact, max_radius)
        query = np.asarray(query_code, dtype=np.uint8).reshape(1, -1)
        return self.finish(*self.within_k(query, k, max_radius), scanned=self.scans)

    scans = False  # a search compares every code

    def within_k(self, query: np.ndarray, k: int, max_radius: int):
        """The codes within the smallest radius (≤ max_radius) holding k of them: labels,
        distances, that radius, and how many codes the search touched."""
        radius = -1
        while True:
            # the probes multiply with each radius, so stepping costs about the last step,
            # while overshooting (doubling) could cost many times the answer's radius
            radius = min(self.next_radius(radius), max_radius)
            labels, distances = self.range_within(query, radius)
            if len(labels) >= k or radius >= max_radius:
                break
        touched = len(labels)  # the codes the last range search returned
        if len(labels) >= k:
            radius = int(np.partition(distances, k - 1)[k - 1])
            keep = distances <= radius
            labels, distances = labels[keep], distances[keep]
        return labels, distances, radius, touched

    def next_radius(self, radius: int) -> int:
        """The next radius to search after `radius`."""
        return radius + 1


# Every binary index FAISS writes starts alike (faiss/impl/index_read.cpp): a four-character
# type, then d (int32), code_size (int32) and ntotal (int64).
HEADER = np.dtype([("fourcc", "S4"), ("d", "<i4"), ("code_size", "<i4"), ("ntotal", "<i8")])


def check_header(handle, codes: int) -> None:
    """The index file's first bytes against the id map: as many codes, of d bits in d/8
    bytes (a flipped byte there would otherwise surface only when the backend is used)."""
    raw = handle.read(HEADER.itemsize)
    handle.seek(0)
    if len(raw) < HEADER.itemsize:
        raise damaged(Path(handle.name), f"it is {len(raw)} bytes, shorter than a FAISS header")
    header = np.frombuffer(raw, dtype=HEADER)[0]
    if not header["fourcc"].startswith(b"IB"):
        raise damaged(Path(handle.name), f"it does not start as a FAISS binary index "
                                         f"({bytes(header['fourcc'])!r})")
    if header["d"] != 8 * header["code_size"] or header["ntotal"] != codes:
        raise damaged(Path(handle.name), f"its header says {header['ntotal']} codes of "
                                         f"{header['d']} bits in {header['code_size']} bytes; "
                                         f"the id map holds {codes}")


def faiss_reason(error: RuntimeError) -> str:
    """FAISS's message without its source location and stack: the check that failed."""
    text = str(error)
    text = text.split("Error: ", 1)[-1].strip()
    return text.splitlines()[0][:120] if text else "no reason given"
