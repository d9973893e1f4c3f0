"""The query engine: query → code → Hamming ball (or a FAISS backend) → ranked documents.

Results are ordered by Hamming distance; ties are broken by cosine similarity to the stored
float16 embedding when the index has them and the query has an embedding (re-ranking), else by
id. With `rerank_candidates=N` the ball is widened until it holds at least N candidates, which
are then ranked by cosine alone: the recall-versus-speed knob.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from hashindex.backends import BACKENDS, check_backend
from hashindex.backends.base import Backend, Candidates
from hashindex.codes import check_bits
from hashindex.encoding import encode_codes
from hashindex.errors import HashIndexError
from hashindex.model_io import model_from_files, read_model_files
from hashindex.store.layout import ENCODER_DIR, FAISS_DIR, PRECOMPUTED_MODEL, TABLE_DIR
from hashindex.store.manifest import IndexManifest, manifest_identity, read_manifest
from hashindex.store.shards import EMBEDDING_COLUMN, ID_COLUMN, TEXT_COLUMN, ShardReader
from hashindex.table.keys import keys_to_codes

# A rebuild that publishes while an index is being opened makes the open start again.
OPEN_ATTEMPTS = 5


@dataclass
class Hit:
    id: str
    distance: int
    score: float
    text: str | None
    metadata: dict
    row: int


@dataclass
class SearchResult:
    hits: list[Hit]
    radius: int
    buckets_touched: int
    documents_touched: int
    candidates: int
    exact: bool
    backend: str
    reranked: bool
    query_code: bytes = b""
    notes: list[str] = field(default_factory=list)
    scanned: bool = False  # every code was compared (a full scan)


@dataclass(frozen=True)
class SearchRequest:
    """Everything a search takes besides the query, checked against one index
    (HashIndex.request): the CLI, the Python API and the HTTP service fill the same fields."""

    k: int = 10
    max_radius: int | None = None  # None: up to the code's bits
    rerank: bool = True  # break distance ties by cosine when the index stores embeddings
    backend: str = "table"
    rerank_candidates: int | None = None  # gather N candidates, rank them by cosine alone
    backend_options: dict = field(default_factory=dict)  # the backend's query knobs

    @property
    def wanted(self) -> int:
        return max(self.k, self.rerank_candidates or 0)


class HashIndex:
    """One build of an index, pinned: every file it reads is opened (mapped, held or read) when
    it is made, so a rebuild that replaces the folder meanwhile never mixes into its answers."""

    def __init__(self, root: Path, manifest: IndexManifest, embedder=None):
        self.root = root
        self.manifest = manifest
        self.bits = check_bits(manifest.bits)
        self.dimension = manifest.dimension
        self.model_name = manifest.embedding_model
        self.has_embeddings = manifest.store_embeddings
        self.metadata_columns = manifest.metadata_columns
        self.shards = ShardReader(root, manifest.shards)
        table = BACKENDS["table"].backend_class().load(root / TABLE_DIR, self.bits)
        if table.table.documents != len(self):
            raise HashIndexError(
                f"index file {root / TABLE_DIR} holds {table.table.documents} documents but the "
                f"manifest says {len(self)}; rebuild the index"
            )
        self._backends: dict[str, Backend] = {"table": table}
        self._faiss_files = BACKENDS[manifest.backend].backend_class().open_files(
            root / FAISS_DIR)
        self._encoder_files = read_model_files(root / ENCODER_DIR)
        if self._encoder_files[0]["model"]["bits"] != self.bits:
            raise HashIndexError(
                f"{root / ENCODER_DIR} makes {self._encoder_files[0]['model']['bits']}-bit "
                f"codes but the manifest says {self.bits}; rebuild the index"
            )
        self._encoder = None
        self._embedder = embedder

    @classmethod
    def open(cls, path: str | Path, verify: bool = True, embedder=None) -> HashIndex:
        """Open and check an index; `embedder` overrides the text model named in the manifest.

        If a rebuild publishes while the files are being opened (the manifest is no longer the
        one read first), the open starts again, so the index returned is one build."""
        root = Path(path)
        for _ in range(OPEN_ATTEMPTS):
            before = manifest_identity(root)
            try:
                index = cls(root, read_manifest(root, verify=verify), embedder)
            except Exception:  # a file replaced between two reads of it fails in many ways
                if before is not None and manifest_identity(root) != before:
                    continue
                raise
            if manifest_identity(root) == before:
                return index
        raise HashIndexError(f"index {root} kept being replaced while it was opened "
                             f"({OPEN_ATTEMPTS} tries); try again")

    def __len__(self) -> int:
        return self.manifest.documents

    # ---- pieces built lazily from what was pinned at open -----------------------------------
    @property
    def encoder(self):
        if self._encoder is None:
            self._encoder = model_from_files(*self._encoder_files,
                                             where=str(self.root / ENCODER_DIR))
        return self._encoder

    def embedder(self):
        if self.model_name == PRECOMPUTED_MODEL:
            raise HashIndexError(
                f"index {self.root} was built from precomputed embeddings and has no text model; "
                "query it with an embedding or a code"
            )
        if self._embedder is None:
            from hashindex.embedding.embedder import Embedder

            self._embedder = Embedder(self.model_name)
        return self._embedder

    def backend(self, name: str = "table") -> Backend:
        check_backend(name)
        if name not in self._backends:
            backend_class = BACKENDS[name].backend_class()
            if name == self.manifest.backend:
                self._backends[name] = backend_class.from_files(self._faiss_files, self.bits)
            else:  # any other backend is built on the fly from the codes the table holds
                self._backends[name] = backend_class.build(self.all_codes(), self.bits)
        return self._backends[name]

    def all_codes(self) -> np.ndarray:
        """Every document's code in row order, rebuilt from the hash table."""
        table = self.backend("table").table
        codes = np.empty((len(self), self.bits // 8), dtype=np.uint8)
        codes[np.asarray(table.rows)] = keys_to_codes(np.asarray(table.keys), self.bits // 8)
        return codes

    # ---- queries -----------------------------------------------------------------------
    def query_code(self, query) -> tuple[np.ndarray, np.ndarray | None]:
        """(code uint8[bits/8], embedding float32[d] or None) for text, an embedding or a code."""
        if isinstance(query, str):
            if not query.strip():
                raise HashIndexError("the query text is empty; pass some words to search for")
            embedding = self.embedder().embed([query])[0]
            return encode_codes(self.encoder, embedding[None])[0], embedding
        if isinstance(query, (bytes, bytearray)):
            query = np.frombuffer(bytes(query), dtype=np.uint8)
        array = np.asarray(query)
        if array.dtype == np.uint8 and array.ndim == 1 and array.shape[0] == self.bits // 8:
            return array, None
        if array.ndim == 1 and array.dtype.kind == "f":
            if array.shape[0] != self.dimension:
                raise HashIndexError(
                    f"query embedding has dimension {array.shape[0]}, but index {self.root} "
                    f"uses {self.model_name} with dimension {self.dimension}"
                )
            embedding = array.astype(np.float32)
            return encode_codes(self.encoder, embedding[None])[0], embedding
        raise HashIndexError(
            f"query must be text, a float embedding of dimension {self.dimension}, or a "
            f"{self.bits}-bit code of {self.bits // 8} uint8 bytes; got {array.dtype} "
            f"array of shape {array.shape}"
        )

    def request(self, k: int = 10, *, max_radius: int | None = None, rerank: bool = True,
                backend: str = "table", rerank_candidates: int | None = None,
                backend_options: dict | None = None) -> SearchRequest:
        """A SearchRequest with every field checked against this index, before anything is
        loaded or embedded; backend_options are merged over the index's stored defaults."""
        check_integer("k", k)
        if k < 1:
            raise HashIndexError(f"k={k} must be at least 1")
        check_backend(backend)
        if max_radius is not None:
            check_integer("radius", max_radius)
            if not 0 <= max_radius <= self.bits:
                raise HashIndexError(
                    f"radius={max_radius} is out of range: use 0 to {self.bits} for this "
                    f"{self.bits}-bit index"
                )
        if rerank_candidates is not None:
            check_integer("rerank_candidates", rerank_candidates)
            if rerank_candidates < 1:
                raise HashIndexError(f"rerank_candidates={rerank_candidates} must be at least 1")
            if not self.has_embeddings:
                raise HashIndexError(
                    f"index {self.root} has no stored embeddings to re-rank with; rebuild it "
                    "with --store-embeddings"
                )
        stored = self.manifest.backend_options if backend == self.manifest.backend else {}
        knobs = BACKENDS[backend].query_options(stored, dict(backend_options or {}))
        return SearchRequest(k, max_radius, bool(rerank), backend, rerank_candidates,
                             knobs.to_dict())

    def search(self, query, k: int = 10, **options) -> SearchResult:
        """One query (text, a float embedding or a uint8 code); options as in `request`."""
        return self.run(query, self.request(k, **options))

    def search_batch(self, queries: list, k: int = 10, **options) -> list[SearchResult]:
        """Many queries; text queries are embedded together in one model call."""
        return self.run_batch(queries, self.request(k, **options))

    def run_batch(self, queries: list, request: SearchRequest) -> list[SearchResult]:
        texts = [q for q in queries if isinstance(q, str)]
        if texts and any(not t.strip() for t in texts):
            raise HashIndexError("a query text is empty; pass some words to search for")
        embedded = iter(self.embedder().embed(texts)) if texts else iter(())
        return [self.run(next(embedded) if isinstance(q, str) else q, request) for q in queries]

    def run(self, query, request: SearchRequest) -> SearchResult:
        """A query under a request already checked by `request`."""
        code, embedding = self.query_code(query)
        radius_cap = self.bits if request.max_radius is None else request.max_radius
        entry = BACKENDS[request.backend]
        knobs = entry.search_options.from_dict(request.backend_options)
        candidates = self.backend(request.backend).search(code, request.wanted, radius_cap,
                                                          knobs)
        return self.rank(candidates, code, embedding, request)

    def rank(self, candidates: Candidates, code, embedding, request: SearchRequest
             ) -> SearchResult:
        rows, distances = candidates.rows, candidates.distances
        use_cosine = ((request.rerank or request.rerank_candidates) and self.has_embeddings
                      and embedding is not None)
        table = self.shards.take(rows) if len(rows) else None
        notes = []
        if not len(rows):
            notes.append(f"no document within radius {candidates.radius}")
        if table is None:
            hits: list[Hit] = []
        else:
            ids = np.asarray(table.column(ID_COLUMN).to_pylist(), dtype=object)
            if use_cosine:
                stored = embedding_matrix(table.column(EMBEDDING_COLUMN))
                scores = stored @ embedding.astype(np.float32)
                order = (np.argsort(-scores, kind="stable") if request.rerank_candidates
                         else np.lexsort((ids, -scores, distances)))
            else:
                scores = 1.0 - 2.0 * distances / self.bits
                order = np.lexsort((ids, distances))
            order = order[: request.k]
            hits = [self.hit(table, int(i), rows, distances, scores) for i in order]
        return SearchResult(
            hits=hits,
            radius=candidates.radius,
            buckets_touched=candidates.buckets_touched,
            documents_touched=candidates.documents_touched,
            candidates=len(rows),
            exact=candidates.exact,
            backend=request.backend,
            reranked=bool(use_cosine),
            query_code=bytes(code),
            notes=notes,
            scanned=candidates.scanned,
        )

    def hit(self, table: pa.Table, i: int, rows, distances, scores) -> Hit:
        metadata = {name: table.column(name)[i].as_py() for name in self.metadata_columns
                    if name in table.column_names}
        return Hit(
            id=table.column(ID_COLUMN)[i].as_py(),
            distance=int(distances[i]),
            score=float(scores[i]),
            text=table.column(TEXT_COLUMN)[i].as_py(),
            metadata=metadata,
            row=int(rows[i]),
        )


def check_integer(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise HashIndexError(f"{name} must be an integer, got {value!r}")


def embedding_matrix(column) -> np.ndarray:
    values = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    flat = values.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(flat, dtype=np.float32).reshape(len(values), -1)
