"""The query engine: query → candidates (a Hamming ball, the graph, a scan) → ranked documents.

Hits are ordered by the score they show: the cosine to the stored vector when the index keeps
its vectors and the query has a float (text, an embedding, a stored document), else the code
agreement 1 − 2·distance/bits (ranked by code distance, and every answer says so). The Hamming
distance stays a field of each hit. Which backend and how many candidates: the setting the
index was tuned to for the request's recall target (tuning.py), unless the request names its
own knobs; `rerank_candidates=N` gathers the N nearest codes to rank by cosine.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from hashindex.backends import BACKENDS, check_backend
from hashindex.code_encoder import tokens_read
from hashindex.codes import check_bits
from hashindex.documents import Documents, RowsById
from hashindex.errors import HashIndexError
from hashindex.filtering import FilterMasks, filtered_candidates, scan_admitted
from hashindex.model_io import read_index_encoder
from hashindex.queries import check_query_text, embed_texts, encode_one, prepare, stored_query
from hashindex.ranking import batch_scores, order, result_notes
from hashindex.request import RequestCache, SearchRequest, make_request
from hashindex.results import CodedQuery, EmbeddedText, Hit, Like, SearchResult
from hashindex.search_backend import Backend, Candidates, search_backend
from hashindex.segments.reading import (
    VectorStack,
    live_mask,
    merged,
    one_store,
    open_segments,
    table_parts,
)
from hashindex.store.layout import (
    EXPORTED_MODEL_FILE,
    PRECOMPUTED_MODEL,
    TEXT_MODEL_DIR,
)
from hashindex.store.manifest import IndexManifest, manifest_identity, read_manifest
from hashindex.store.shards import ID_COLUMN, ShardReader
from hashindex.tuning import Tuning
from hashindex.validation import FLAG, PATH, check_argument, check_query_embedding

__all__ = ["CodedQuery", "EmbeddedText", "HashIndex", "Hit", "Like", "SearchRequest",
           "SearchResult", "check_query_text", "embed_texts", "read_index_encoder",
           "scan_admitted"]

log = logging.getLogger("hashindex")

# A rebuild that publishes while an index is being opened makes the open start again.
OPEN_ATTEMPTS = 5


class HashIndex:
    """One build of an index, pinned: every file it reads is opened (mapped, held or read) when
    it is made, so a rebuild that replaces the folder meanwhile never mixes into its answers."""

    def __init__(self, root: Path, manifest: IndexManifest, embedder=None):
        self.root = root
        self.manifest = manifest
        self.identity: str | None = None  # the manifest's sha256, set by open
        self.bits = check_bits(manifest.bits)
        self.dimension = manifest.dimension
        self.model_name = manifest.embedding_model
        self.described = f"{root} uses {self.model_name}"  # what a query's errors name
        self.metadata_columns = manifest.metadata_columns
        self.row_count = manifest.rows  # every segment's rows, deleted ones included
        self.encoder = read_index_encoder(root, self.bits)  # numpy arrays, no torch
        self.segments = open_segments(root, manifest)
        starts = [segment.start for segment in self.segments]
        self.shards = ShardReader(root, manifest.shards)
        self.vectors = None
        if manifest.store_embeddings:
            stores = [segment.vectors for segment in self.segments]
            self.vectors = stores[0] if len(stores) == 1 else VectorStack(stores, starts)
        self.live = live_mask(self.row_count, [(segment.start, segment.deleted)
                                               for segment in self.segments])
        self.tuning = Tuning.from_dict(manifest.tuning) if self.vectors is not None else None
        carried = root / TEXT_MODEL_DIR / EXPORTED_MODEL_FILE
        self._text_model = open(carried, "rb") if carried.exists() else None  # pinned, read late
        self._backends: dict[str, Backend] = {
            "table": merged(*table_parts(self.segments, self.bits), self.bits)}
        self._codes: np.ndarray | None = None
        self.documents = Documents(self.shards, self.metadata_columns)  # hits' id, text, ...
        self.rows_by_id = RowsById(self.shards, self.live, str(root))
        self.masks = FilterMasks(self.shards, self.live)  # rows a metadata filter admits
        self.requests = RequestCache(self)  # search()'s recent option sets, checked once
        self._embedder = embedder
        if manifest.legacy:
            log.info("index %s is in format %d (before segments): it answers queries but takes "
                     "no add, delete or compact until `hashindex upgrade %s`", root,
                     manifest.format_version, root)

    def live_rows(self) -> np.ndarray:
        """The rows of live documents."""
        return (np.flatnonzero(self.live) if self.live is not None
                else np.arange(self.row_count))

    def rows_by_origin(self) -> tuple[np.ndarray, np.ndarray]:
        """(live rows the encoder was trained with, live rows added since): the trained ones
        are a prefix of the first segment (the build's, kept first by compaction)."""
        rows = self.live_rows()
        trained = self.segments[0].record.trained_rows if self.segments else 0
        return rows[rows < trained], rows[rows >= trained]

    @classmethod
    def open(cls, path: str | Path, verify: bool = False, embedder=None) -> HashIndex:
        """Open and check an index (its manifest, every file's presence and size, the table's
        and shards' row counts: a cost independent of the index's size; `verify` also
        re-hashes every file); `embedder` overrides the text model named in the manifest.

        If a rebuild publishes while the files are being opened (the manifest is no longer the
        one read first), the open starts again, so the index returned is one build."""
        check_argument("HashIndex.open", "path", path, PATH)
        check_argument("HashIndex.open", "verify", verify, FLAG)
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
                index.identity = before  # the generation opened (snapshots.py compares it)
                return index
        raise HashIndexError(f"index {root} kept being replaced while it was opened "
                             f"({OPEN_ATTEMPTS} tries); try again")

    def __len__(self) -> int:
        """Live documents (deleted rows left out)."""
        return self.manifest.documents

    # ---- pieces built lazily from what was pinned at open -----------------------------------
    def embedder(self, for_documents: bool = False, threads: int | None = None):
        """The index's text model, as its documents were embedded. For queries (cached) the
        lean path where it applies (no torch: embedding/lean.py); `for_documents`: a new one
        through sentence-transformers' own modules, as a build runs. `threads`: the model's
        threads when it is made here (None: every core)."""
        if self.model_name == PRECOMPUTED_MODEL:
            raise HashIndexError(
                f"index {self.root} was built from precomputed embeddings and has no text model; "
                "query it with an embedding or a code"
            )
        if self._embedder is None or for_documents:
            from hashindex.embedding.embedder import Embedder, EmbeddingSpec

            spec = EmbeddingSpec.from_record(self.model_name, self.manifest.embedding)
            carried = (os.pread(self._text_model.fileno(),
                                os.fstat(self._text_model.fileno()).st_size, 0)
                       if self._text_model is not None else None)
            embedder = Embedder.from_spec(spec, model_file=carried, lean=not for_documents,
                                          threads=threads)
            if for_documents:
                return embedder
            self._embedder = embedder
        return self._embedder

    def adopt_embedder(self, embedder) -> None:
        """Use a text model already loaded (a service swapping in a new build of the same
        model keeps the one it has)."""
        self._embedder = embedder

    def backend(self, name: str = "table") -> Backend:
        check_backend(name)
        if name not in self._backends:
            backend_class = BACKENDS[name].backend_class()
            if name == self.manifest.backend:
                parts = [backend_class.from_files(segment.second_files, self.bits)
                         for segment in self.segments]
                if backend_class.reads_vectors:
                    for part, segment in zip(parts, self.segments):
                        part.vectors = segment.vectors
                self._backends[name] = merged(
                    parts, [segment.start for segment in self.segments],
                    [segment.record.rows for segment in self.segments], self.bits)
            else:  # any other backend is built on the fly from the codes the table holds
                embeddings = (self.vectors.rows(np.arange(self.row_count))
                              if self.vectors is not None else None)
                backend = backend_class.build(self.all_codes(), self.bits, embeddings=embeddings)
                if backend_class.reads_vectors:
                    backend.vectors = one_store(self.vectors)
                self._backends[name] = backend
        return self._backends[name]

    def all_codes(self) -> np.ndarray:
        """Every row's code in row order (deleted rows too), rebuilt from the tables once."""
        if self._codes is None:
            parts = [segment.codes() for segment in self.segments]
            self._codes = (np.concatenate(parts) if parts
                           else np.zeros((0, self.bits // 8), np.uint8))
        return self._codes

    def filter_columns(self) -> dict:
        """The columns a filter may name (id and the metadata), with their arrow types."""
        schema = self.shards.schema
        return {name: schema.field(name).type for name in [ID_COLUMN, *self.metadata_columns]
                if name in schema.names}

    def admitted(self, where) -> np.ndarray:
        """bool[rows] of the live rows a metadata filter admits (kept for repeated filters)."""
        return self.masks.admitted(where)

    def row_of(self, doc_id) -> int:
        """A live document's row by id (an unknown one is UnknownDocument)."""
        return self.rows_by_id(doc_id)

    def stored_query(self, like: Like):
        """(the query a Like stands for, and the document's row): queries.stored_query."""
        row = self.row_of(like.id)
        return stored_query(row, self.all_codes()[row], self.vectors,
                            self.encoder.reads_tokens), row

    # ---- queries -----------------------------------------------------------------------
    def query_code(self, query, encode: bool = True) -> tuple[np.ndarray | None,
                                                               np.ndarray | None]:
        """(code uint8[bits/8], embedding float32[d] or None) for text, an embedding or a code;
        with encode=False an embedding's code is left None (the caller encodes many at once)."""
        if isinstance(query, str):
            query = self.embed_texts([check_query_text(query)])[0]
        return prepare(query, self.encoder, self.bits, self.dimension, self.described,
                       encode)

    def embed_texts(self, texts: list[str]) -> list[EmbeddedText]:
        """Texts through the text model in one call, as the documents went: pooled, and for a
        sequence variant with their token sequences (which its codes are made from)."""
        return embed_texts(self.embedder(), texts, self.token_count)

    @property
    def token_count(self) -> int | None:
        """Tokens a sequence variant reads of each text (None: it reads pooled vectors)."""
        return tokens_read(self.encoder)

    def request(self, k: int = 10, *, radius: int | None = None, rerank: bool = True,
                backend: str | None = None, rerank_candidates: int | None = None,
                backend_options: dict | None = None, filter: dict | None = None,
                target_recall: float | None = None,
                max_radius: int | None = None) -> SearchRequest:
        """A SearchRequest with every field checked against this index, before anything is
        loaded or embedded. Without knobs of its own (`backend_options`,
        `rerank_candidates`) it runs the fastest setting the index was tuned to that meets
        `target_recall` (default: the build's target), of `backend` when one is named;
        backend_options are merged over the index's stored defaults; `filter` on metadata as
        hashindex/filters.py describes; `radius` caps the Hamming distance of the candidates
        (`max_radius`, its old name, warns)."""
        return make_request(self, k, radius=radius, max_radius=max_radius, rerank=rerank,
                            backend=backend,
                            rerank_candidates=rerank_candidates,
                            backend_options=backend_options, filter=filter,
                            target_recall=target_recall)

    def search(self, query, k: int = 10, **options) -> SearchResult:
        """One query (text, a float embedding, a uint8 code or Like(id)); options as in
        `request` (a repeated set of options is checked once)."""
        return self.run(query, self.requests.get(k, options))

    def search_batch(self, queries: list, k: int = 10, **options) -> list[SearchResult]:
        """Many queries; text queries are embedded together in one model call."""
        return self.run_batch(queries, self.requests.get(k, options))

    def run(self, query, request: SearchRequest) -> SearchResult:
        """A query under a request already checked by `request`: a batch of one, each step
        the one run_batch takes, without the batching."""
        code, embedding, row = (self.prepare_batch([query])[0]
                                if isinstance(query, (str, Like)) else
                                (*self.query_code(query), None))
        return self.result(self.candidates(code, request, row, embedding), code, embedding,
                           request)

    def run_batch(self, queries: list, request: SearchRequest) -> list[SearchResult]:
        """Queries under one request: the texts embedded in one model call, the embeddings
        encoded in one matrix product, every candidate list scored in one compiled call."""
        if not isinstance(queries, (list, tuple)):
            raise HashIndexError(f"queries must be a list of queries, not a "
                                 f"{type(queries).__name__}")
        prepared = self.prepare_batch(queries)
        found = [self.candidates(code, request, row, embedding)
                 for code, embedding, row in prepared]
        scores = batch_scores(self.vectors, found, [e for _, e, _ in prepared], request)
        return [self.result(candidates, code, embedding, request, score)
                for candidates, (code, embedding, _), score in zip(found, prepared, scores)]

    def prepare_batch(self, queries: list) -> list[tuple]:
        """Each query's (code, embedding or None, row left out or None): texts embedded in
        one call, stored documents looked up, embeddings encoded together."""
        texts = [check_query_text(q) for q in queries if isinstance(q, str)]
        embedded = iter(self.embed_texts(texts)) if texts else iter(())
        one = len(queries) == 1  # encoded at once, without a stacking step
        prepared = []
        for query in queries:
            row = None
            if isinstance(query, Like):
                query, row = self.stored_query(query)
            elif isinstance(query, str):
                query = next(embedded)
            code, embedding = prepare(query, self.encoder, self.bits, self.dimension,
                                      self.described, encode=one)
            prepared.append((code, embedding, row))
        floats = [i for i, (code, _, _) in enumerate(prepared) if code is None]
        if floats:
            codes = self.encoder.encode(np.stack([prepared[i][1] for i in floats]))
            for i, code in zip(floats, codes):
                prepared[i] = (code, *prepared[i][1:])
        return prepared

    def result(self, candidates: Candidates, code, embedding, request: SearchRequest,
               scores: np.ndarray | None = None) -> SearchResult:
        rows, distances, scores, by_cosine = order(candidates, embedding, request,
                                                   self.vectors, self.bits, scores)
        examined, passed = candidates.filtered or (None, None)
        return SearchResult(
            hits=self.hits(rows, distances, scores),
            radius=candidates.radius,
            buckets_touched=candidates.buckets_touched,
            documents_touched=candidates.documents_touched,
            candidates=len(candidates.rows),
            exact=candidates.exact,
            backend=request.backend,
            reranked=by_cosine,
            query_code=bytes(code) if code is not None else b"",
            notes=result_notes(request, candidates),
            scanned=candidates.scanned,
            filter_examined=examined,
            filter_passed=passed,
            ranking="cosine" if by_cosine else "code distance",
            setting=request.setting,
            tuned_recall=request.tuned_recall,
        )

    def top_rows(self, embedding: np.ndarray, request: SearchRequest,
                 walk_past: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The k best rows and their scores for one float32 query embedding, without reading
        the shards: the lean path (a service or a benchmark fetches ids and text itself).
        `walk_past`: a row the graph's walk treats as already visited (a tuning query that is
        a stored document walks as an unseen query would, not through its own node)."""
        embedding = check_query_embedding(embedding)
        # a graph walked by the vectors needs no code: its encoding was a third of the query
        code = None if self.walks_vectors(request) else encode_one(self.encoder, embedding)
        return self.ranked_rows(code, embedding, request, walk_past)

    def ranked_rows(self, code, embedding, request: SearchRequest,
                    walk_past: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The k best rows and their scores for a code and/or a unit float32 embedding (a
        stored document's own, in the build's tuning)."""
        rows, _, scores, _ = order(
            self.candidates(code, request, None, embedding, walk_past=walk_past),
            embedding, request, self.vectors, self.bits)
        return rows, scores

    def walks_vectors(self, request: SearchRequest) -> bool:
        """Whether this request's candidates come from the graph walked by int8 vectors alone
        (no filter or deleted rows, whose widening may scan codes): then no code is needed."""
        if (request.backend != "graph" or request.where is not None or self.live is not None
                or getattr(request.knobs, "walk", "codes") == "codes"):
            return False
        backend = self.backend("graph")
        parts = getattr(backend, "parts", [backend])
        return bool(parts) and all(getattr(part.vectors, "scales", None) is not None
                                   for part in parts)

    def candidates(self, code: np.ndarray | None, request: SearchRequest,
                   excluded: int | None = None, embedding: np.ndarray | None = None,
                   walk_past: int | None = None) -> Candidates:
        """The backend's candidates for a code (and the float query, for a backend that reads
        vectors); under a filter (or leaving out a Like query's own row) only admitted rows,
        the search widened until `wanted` of them pass (filtering.py)."""
        radius_cap = self.bits if request.max_radius is None else request.max_radius
        if request.where is None and excluded is None and self.live is None:
            found = search_backend(self.backend(request.backend), code, request.wanted,
                                   radius_cap, request.knobs, embedding, walk_past)
        else:
            admitted = (self.admitted(request.where) if request.where is not None
                        else self.live if self.live is not None
                        else np.ones(self.row_count, dtype=bool))
            if excluded is not None:
                admitted = admitted.copy()
                admitted[excluded] = False
            found = filtered_candidates(self, code, request, admitted, radius_cap, embedding)
            if request.where is None:  # deleted rows (or the liked one) are no user's filter
                found.filtered = None
        return found.nearest(request.rerank_candidates) if request.rerank_candidates else found

    def document(self, doc_id: str) -> Hit:
        """One document by id, with its metadata (distance 0, score 1: itself)."""
        row = self.row_of(doc_id)
        return self.hits(np.array([row]), np.zeros(1, np.int64), np.ones(1))[0]

    def hits(self, rows: np.ndarray, distances: np.ndarray, scores: np.ndarray) -> list[Hit]:
        """Id, text and metadata of the given rows (documents.py: from the shards, or held)."""
        return self.documents.hits(rows, distances, scores)
