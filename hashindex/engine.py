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
import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from hashindex.backends import BACKENDS, check_backend
from hashindex.bitops import code_words
from hashindex.codes import check_bits
from hashindex.errors import HashIndexError, UnknownDocument
from hashindex.filters import MetadataFilter, parse_filter
from hashindex.model_io import read_code_encoder
from hashindex.search_backend import Backend, Candidates, empty_candidates, search_backend
from hashindex.segments.reading import (
    SegmentedBackend,
    VectorStack,
    open_segments,
    table_parts,
)
from hashindex.store.layout import (
    ENCODER_DIR,
    EXPORTED_MODEL_FILE,
    PRECOMPUTED_MODEL,
    TEXT_MODEL_DIR,
)
from hashindex.store.manifest import IndexManifest, manifest_identity, read_manifest
from hashindex.store.shards import ID_COLUMN, TEXT_COLUMN, ShardReader
from hashindex.tuning import Tuning, check_target
from hashindex.validation import FLAG, PATH, check_argument, check_query_embedding
from hashindex.vectors import VectorStore

log = logging.getLogger("hashindex")

# A rebuild that publishes while an index is being opened makes the open start again.
OPEN_ATTEMPTS = 5
# A filtered search widens the ball until k documents pass; once it would gather this share of
# the index, scanning the codes of the admitted rows alone is cheaper (and exact).
FILTER_SCAN_SHARE = 0.25
FILTER_MASKS_KEPT = 32  # recent filters' row masks, kept for a service's repeated filters


@dataclass(frozen=True)
class Like:
    """A query by a stored document: its own embedding (its code where the index keeps no
    embeddings); the document itself is left out of the results."""

    id: str


@dataclass(frozen=True)
class EmbeddedText:
    """A text query already through the text model (embed_texts): its pooled embedding and,
    for a sequence variant, its token embeddings; what a service's batched texts become."""

    embedding: np.ndarray  # float32 (d,)
    tokens: np.ndarray | None = None  # float32 (max_tokens, d), zero-padded
    length: int = 0  # real tokens


@dataclass(frozen=True)
class CodedQuery:
    """A code with the embedding that re-ranks its candidates (a stored document of a
    sequence variant, whose embedding alone cannot be encoded)."""

    code: np.ndarray
    embedding: np.ndarray


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
    ranking: str = "cosine"  # what the hits are ordered by: cosine, or code distance
    setting: str = ""  # the tuned setting the request ran (empty: its own knobs)
    tuned_recall: float | None = None  # what that setting reached at the build's tuning
    scanned: bool = False  # every code was compared (a full scan)
    filter_examined: int | None = None  # candidates checked against the metadata filter
    filter_passed: int | None = None  # of which passed


@dataclass(frozen=True)
class TunedChoice:
    setting: object  # tuning.Setting, or None: the request's own knobs
    target: float | None
    notes: tuple[str, ...]


@dataclass(frozen=True)
class SearchRequest:
    """Everything a search takes besides the query, checked against one index
    (HashIndex.request): the CLI, the Python API and the HTTP service fill the same fields."""

    k: int = 10
    max_radius: int | None = None  # None: up to the code's bits
    rerank: bool = True  # rank by cosine when the index stores embeddings (else by code)
    backend: str = "table"
    rerank_candidates: int | None = None  # gather N candidates, rank them by cosine alone
    backend_options: dict = field(default_factory=dict)  # the backend's query knobs
    knobs: object = field(default=None, compare=False, repr=False)  # the same, parsed
    where: MetadataFilter | None = None  # only rows whose metadata pass it
    target_recall: float | None = None  # what the tuned setting was chosen for
    setting: str = ""  # that setting, described (empty: the request's own knobs)
    tuned_recall: float | None = None  # what it reached when the index was tuned
    notes: tuple[str, ...] = ()  # said with every answer (a target not met, stale tuning)

    @property
    def wanted(self) -> int:
        return max(self.k, self.rerank_candidates or 0)


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
        self.live = self.live_mask()  # None when no row is deleted
        self.tuning = Tuning.from_dict(manifest.tuning) if self.vectors is not None else None
        carried = root / TEXT_MODEL_DIR / EXPORTED_MODEL_FILE
        self._text_model = open(carried, "rb") if carried.exists() else None  # pinned, read late
        self._backends: dict[str, Backend] = {
            "table": merged(*table_parts(self.segments, self.bits), self.bits)}
        self._rows_by_id: dict[str, int] | None = None
        self._codes: np.ndarray | None = None
        self._columns: dict[str, object] = {}
        self._masks: OrderedDict[MetadataFilter, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # a service searches from many threads
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

    def live_mask(self) -> np.ndarray | None:
        if not any(len(segment.deleted) for segment in self.segments):
            return None
        live = np.ones(self.row_count, dtype=bool)
        for segment in self.segments:
            live[segment.start + segment.deleted] = False
        return live

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

    def admitted(self, where: MetadataFilter) -> np.ndarray:
        """bool[rows] of the live rows a filter admits; columns and recent masks are kept."""
        with self._lock:
            mask = self._masks.get(where)
            if mask is not None:
                self._masks.move_to_end(where)
                return mask

            def column(name):
                if name not in self._columns:
                    self._columns[name] = self.shards.column_array(name)
                return self._columns[name]

            mask = where.mask(column)
            if self.live is not None:
                mask &= self.live
            self._masks[where] = mask
            if len(self._masks) > FILTER_MASKS_KEPT:
                self._masks.popitem(last=False)
            return mask

    def row_of(self, doc_id) -> int:
        """A live document's row by id; the id → row map is read from the shards on first
        use."""
        if self._rows_by_id is None:
            ids = self.shards.column_array(ID_COLUMN).to_pylist()
            live = self.live
            self._rows_by_id = {str(i): row for row, i in enumerate(ids)
                                if live is None or live[row]}
        row = self._rows_by_id.get(str(doc_id))
        if row is None:
            raise UnknownDocument(str(doc_id), str(self.root))
        return row

    def stored_query(self, like: Like):
        """(the query a Like stands for, and the document's row): its stored embedding, or
        its code where none is stored; a sequence variant's codes come from tokens, so its
        documents are searched by their code, re-ranked by their stored embedding."""
        row = self.row_of(like.id)
        code = self.all_codes()[row].copy()
        if self.vectors is None:
            return code, row
        vector = self.vectors.rows(np.array([row]))[0]
        return (CodedQuery(code, vector) if self.encoder.reads_tokens else vector), row

    # ---- queries -----------------------------------------------------------------------
    def query_code(self, query, encode: bool = True) -> tuple[np.ndarray | None,
                                                               np.ndarray | None]:
        """(code uint8[bits/8], embedding float32[d] or None) for text, an embedding or a code;
        with encode=False an embedding's code is left None (the caller encodes many at once)."""
        if isinstance(query, str):
            query = self.embed_texts([check_query_text(query)])[0]
        if isinstance(query, CodedQuery):
            return query.code, query.embedding
        if isinstance(query, EmbeddedText):
            if query.tokens is None and not encode:  # the caller encodes many at once
                return None, query.embedding
            if query.tokens is not None:
                code = self.encoder.encode_tokens(query.embedding[None], query.tokens[None],
                                                  np.array([query.length]))[0]
            else:
                code = self.encoder.encode(query.embedding[None])[0]
            return code, query.embedding
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
            embedding = check_query_embedding(array)  # unit length: scores are cosines
            return self.encoder.encode(embedding[None])[0] if encode else None, embedding
        raise HashIndexError(
            f"query must be text, a float embedding of dimension {self.dimension}, or a "
            f"{self.bits}-bit code of {self.bits // 8} uint8 bytes; got {array.dtype} "
            f"array of shape {array.shape}"
        )

    def embed_texts(self, texts: list[str]) -> list[EmbeddedText]:
        """Texts through the text model in one call, as the documents went: pooled, and for a
        sequence variant with their token sequences (which its codes are made from)."""
        return embed_texts(self.embedder(), texts, self.token_count)

    @property
    def token_count(self) -> int | None:
        """Tokens a sequence variant reads of each text (None: it reads pooled vectors)."""
        return self.encoder.max_tokens if self.encoder.reads_tokens else None

    def request(self, k: int = 10, *, max_radius: int | None = None, rerank: bool = True,
                backend: str | None = None, rerank_candidates: int | None = None,
                backend_options: dict | None = None, filter: dict | None = None,
                target_recall: float | None = None) -> SearchRequest:
        """A SearchRequest with every field checked against this index, before anything is
        loaded or embedded. Without knobs of its own (`backend_options`,
        `rerank_candidates`) it runs the fastest setting the index was tuned to that meets
        `target_recall` (default: the build's target), of `backend` when one is named;
        backend_options are merged over the index's stored defaults; `filter` on metadata as
        hashindex/filters.py describes."""
        check_integer("k", k)
        if k < 1:
            raise HashIndexError(f"k={k} must be at least 1")
        if backend is not None:
            check_backend(backend)
        if target_recall is not None:
            target_recall = check_target(target_recall)
        if backend_options is not None and not isinstance(backend_options, dict):
            raise HashIndexError(f"backend_options must be a dict of knob: value, not a "
                                 f"{type(backend_options).__name__} ({backend_options!r})")
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
            if self.vectors is None:
                raise HashIndexError(
                    f"index {self.root} has no stored embeddings to re-rank with; rebuild it "
                    "without --no-store-embeddings"
                )
        tuned = self.tuned_setting(k, backend, target_recall, rerank and not backend_options
                                   and rerank_candidates is None)
        notes = list(tuned.notes)
        if tuned.setting is not None:
            backend = tuned.setting.backend
            backend_options = tuned.setting.backend_options
            rerank_candidates = tuned.setting.rerank_candidates
        backend = backend or "table"
        if backend == "exact" and self.vectors is None:
            raise HashIndexError(f"index {self.root} keeps no vectors for the exact backend to "
                                 "scan; use another backend, or rebuild it without "
                                 "--no-store-embeddings")
        stored = self.manifest.backend_options if backend == self.manifest.backend else {}
        knobs = BACKENDS[backend].query_options(stored, dict(backend_options or {}))
        where = parse_filter(filter, self.filter_columns())
        if self.vectors is None:
            notes.append("ranked by code distance: this index keeps no vectors (built with "
                         "--no-store-embeddings)")
        return SearchRequest(k, max_radius, bool(rerank), backend, rerank_candidates,
                             knobs.to_dict(), knobs, where, tuned.target,
                             tuned.setting.describe() if tuned.setting else "",
                             tuned.setting.recall if tuned.setting else None, tuple(notes))

    def tuned_setting(self, k: int, backend: str | None, target: float | None,
                      use: bool) -> TunedChoice:
        """The tuned setting a request runs (None where it brings its own knobs, asks for a
        backend the tuning did not sweep, or the index has no tuning), and what to say."""
        tuning = self.tuning
        if tuning is None:
            note = (("this index has no tuning table (built without stored vectors or by an "
                     "older hashindex): target_recall is not applied",) if target is not None
                    else ())
            return TunedChoice(None, None, note)
        target = tuning.target_recall if target is None else target
        swept = {s.backend for s in tuning.settings}
        if not use or (backend is not None and backend not in swept):
            return TunedChoice(None, None, ())
        setting, note = tuning.choose(target, backend)
        notes = [note] if note else []
        if k > tuning.k:
            notes.append(f"the setting was tuned for k={tuning.k}; for k={k} its budget is "
                         f"scaled by {k / tuning.k:g}, a recall not measured")
            setting = setting.scaled(k, tuning.k)
        if tuning.stale(self.row_count, len(self)):
            notes.append(f"the tuning is stale: {self.row_count - tuning.rows} rows were added "
                         f"since it ran (over {tuning.stale_share:.0%} of the index); "
                         "`hashindex compact` tunes it again")
        return TunedChoice(setting, target, tuple(notes))

    def search(self, query, k: int = 10, **options) -> SearchResult:
        """One query (text, a float embedding, a uint8 code or Like(id)); options as in
        `request`."""
        return self.run(query, self.request(k, **options))

    def search_batch(self, queries: list, k: int = 10, **options) -> list[SearchResult]:
        """Many queries; text queries are embedded together in one model call."""
        return self.run_batch(queries, self.request(k, **options))

    def run_batch(self, queries: list, request: SearchRequest) -> list[SearchResult]:
        """Many queries at once: the texts embedded in one model call, the embeddings encoded
        in one matrix product, every candidate list scored in one compiled call."""
        if not isinstance(queries, (list, tuple)):
            raise HashIndexError(f"queries must be a list of queries, not a "
                                 f"{type(queries).__name__}")
        texts = [check_query_text(q) for q in queries if isinstance(q, str)]
        liked = [self.stored_query(q) if isinstance(q, Like) else (q, None) for q in queries]
        queries, excluded = [q for q, _ in liked], [row for _, row in liked]
        embedded = iter(self.embed_texts(texts)) if texts else iter(())
        prepared = [self.query_code(next(embedded) if isinstance(q, str) else q, encode=False)
                    for q in queries]
        floats = [i for i, (code, _) in enumerate(prepared) if code is None]  # embeddings
        if floats:
            codes = self.encoder.encode(np.stack([prepared[i][1] for i in floats]))
            for i, code in zip(floats, codes):
                prepared[i] = (code, prepared[i][1])
        found = [self.candidates(code, request, row, embedding)
                 for (code, embedding), row in zip(prepared, excluded)]
        scores = self.batch_scores(found, prepared, request)
        return [self.result(candidates, code, embedding, request, score)
                for candidates, (code, embedding), score in zip(found, prepared, scores)]

    def batch_scores(self, found: list[Candidates], prepared, request) -> list:
        """Every query's candidate scores from one compiled call (None where not re-ranked)."""
        wanted = [i for i, (_, embedding) in enumerate(prepared)
                  if embedding is not None and self.vectors is not None
                  and found[i].scores is None and (request.rerank or request.rerank_candidates)]
        out: list = [None] * len(found)
        if wanted:
            lengths = [len(found[i].rows) for i in wanted]
            offsets = np.concatenate([[0], np.cumsum(lengths)])
            rows = np.concatenate([found[i].rows for i in wanted])
            flat = self.vectors.scores_batch(rows, offsets,
                                             np.stack([prepared[i][1] for i in wanted]))
            for j, i in enumerate(wanted):
                out[i] = flat[offsets[j] : offsets[j + 1]]
        return out

    def run(self, query, request: SearchRequest) -> SearchResult:
        """A query under a request already checked by `request`."""
        excluded = None
        if isinstance(query, Like):
            query, excluded = self.stored_query(query)
        code, embedding = self.query_code(query)
        return self.result(self.candidates(code, request, excluded, embedding), code, embedding,
                           request)

    def result(self, candidates: Candidates, code, embedding, request: SearchRequest,
               scores: np.ndarray | None = None) -> SearchResult:
        rows, distances, scores, by_cosine = self.order(candidates, embedding, request, scores)
        examined, passed = candidates.filtered or (None, None)
        notes = list(request.notes) + ([] if len(candidates.rows) else [
            f"no document within radius {candidates.radius}"
            + (" passes the filter" if examined is not None else "")])
        if passed is not None and 0 < passed < request.k:
            notes.append(f"only {passed} documents within radius {candidates.radius} pass "
                         "the filter")
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
            notes=notes,
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
        code = None if self.walks_vectors(request) else self.encoder.encode(embedding[None])[0]
        return self.ranked_rows(code, embedding, request, walk_past)

    def ranked_rows(self, code, embedding, request: SearchRequest,
                    walk_past: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The k best rows and their scores for a code and/or a unit float32 embedding (a
        stored document's own, in the build's tuning)."""
        rows, _, scores, _ = self.order(
            self.candidates(code, request, None, embedding, walk_past=walk_past),
            embedding, request)
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
        the search widened until `wanted` of them pass."""
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
            found = self.filtered_candidates(code, request, admitted, radius_cap, embedding)
            if request.where is None:  # deleted rows (or the liked one) are no user's filter
                found.filtered = None
        return found.nearest(request.rerank_candidates) if request.rerank_candidates else found

    def filtered_candidates(self, code, request: SearchRequest, admitted: np.ndarray,
                            radius_cap: int, embedding: np.ndarray | None = None
                            ) -> Candidates:
        """Ask the backend for more candidates than wanted (by the filter's selectivity),
        keep the admitted ones, and widen 4× until enough pass or the ball is the cap; once
        that would gather FILTER_SCAN_SHARE of the index, scan the admitted rows' codes."""
        total = self.row_count
        count = len(self) if admitted is self.live else int(np.count_nonzero(admitted))
        wanted = request.wanted
        backend = self.backend(request.backend)
        if count == 0:
            return replace(empty_candidates(backend.exact, radius_cap), filtered=(0, 0))
        by_cosine = (request.rerank and embedding is not None and self.vectors is not None)
        if request.backend == "exact" and by_cosine:  # a scan anyway: only the admitted rows
            return self.scan_admitted(code, np.flatnonzero(admitted), wanted, radius_cap,
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
        return self.scan_admitted(code, np.flatnonzero(admitted), wanted, radius_cap,
                                  embedding if by_cosine else None)

    def scan_admitted(self, code, rows: np.ndarray, wanted: int, radius_cap: int,
                      embedding: np.ndarray | None = None) -> Candidates:
        """Exact: every admitted row's distance; the smallest radius holding `wanted` of them
        (ties complete), capped. With an `embedding` the `wanted` best by cosine instead
        (within the radius cap), ranked: what the hits are ordered by."""
        query = code_words(np.asarray(code, dtype=np.uint8)[None])
        distances = np.bitwise_count(code_words(self.all_codes()[rows]) ^ query).sum(
            axis=1, dtype=np.int64)
        if embedding is not None:
            scores = self.vectors.scores(rows, embedding)
            inside = np.flatnonzero(distances <= radius_cap)
            top = inside[np.lexsort((rows[inside], -scores[inside]))][:wanted]
            return Candidates(rows[top], distances[top],
                              radius=int(distances[top].max()) if len(top) else radius_cap,
                              buckets_touched=0, documents_touched=len(rows), exact=True,
                              scanned=True, filtered=(len(rows), len(inside)),
                              scores=scores[top])
        radius = radius_cap
        if len(rows) > wanted:
            radius = min(radius_cap, int(np.partition(distances, wanted - 1)[wanted - 1]))
        keep = distances <= radius
        found = Candidates.ranked(rows[keep], distances[keep], radius=radius, buckets=0,
                                  documents=len(rows), exact=True, scanned=True)
        return replace(found, filtered=(len(rows), int(np.count_nonzero(keep))))

    def order(self, candidates: Candidates, embedding, request: SearchRequest,
              scores: np.ndarray | None = None):
        """The k best candidates: (rows, distances, scores, by_cosine), ordered by the score
        they show: the cosine to the stored vector (ties by row), or where there is none (no
        vectors, a bare code, rerank=False) the code agreement, i.e. by distance. Scores come
        from the vector matrix (hashindex/vectors.py), never from the shards (or are given)."""
        rows, distances = candidates.rows, candidates.distances
        walked = candidates.scores is not None  # ranked by the vectors already (best first)
        by_cosine = walked or bool(request.rerank and self.vectors is not None
                                   and embedding is not None)
        if walked:
            scores, order = candidates.scores, np.arange(len(rows))
        elif by_cosine:
            if scores is None:
                scores = self.vectors.scores(rows, embedding)
            order = np.lexsort((rows, -scores))
        else:
            scores = 1.0 - 2.0 * distances / self.bits
            order = np.lexsort((rows, distances))
        top = order[: request.k]
        if by_cosine:  # an int8 vector's scale can carry a cosine a hair past 1
            return rows[top], distances[top], np.minimum(scores[top], 1.0), by_cosine
        return rows[top], distances[top], scores[top], by_cosine

    def document(self, doc_id: str) -> Hit:
        """One document by id, with its metadata (distance 0, score 1: itself)."""
        row = self.row_of(doc_id)
        return self.hits(np.array([row]), np.zeros(1, np.int64), np.ones(1))[0]

    def hits(self, rows: np.ndarray, distances: np.ndarray, scores: np.ndarray) -> list[Hit]:
        """Id, text and metadata of the given rows, from the shards."""
        if not len(rows):
            return []
        table = self.shards.take(rows)
        ids = table.column(ID_COLUMN).to_pylist()
        texts = table.column(TEXT_COLUMN).to_pylist()
        metadata = {name: table.column(name).to_pylist() for name in self.metadata_columns
                    if name in table.column_names}
        return [Hit(id=ids[i], distance=int(distances[i]), score=float(scores[i]),
                    text=texts[i], metadata={name: values[i] for name, values in metadata.items()},
                    row=int(rows[i]))
                for i in range(len(rows))]


def read_index_encoder(root: Path, bits: int):
    """The index's code encoder, which must make the manifest's `bits`-bit codes: every
    command that reads or changes an index checks this first (an edited manifest)."""
    encoder = read_code_encoder(root / ENCODER_DIR)
    if encoder.bits != bits:
        raise HashIndexError(f"{root / ENCODER_DIR} makes {encoder.bits}-bit codes but the "
                             f"manifest says {bits}; rebuild the index")
    return encoder


def check_query_text(text: str) -> str:
    """A query text the text model can take: some words, in characters UTF-8 can write."""
    if not text.strip():
        raise HashIndexError("the query text is empty; pass some words to search for")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise HashIndexError(f"the query text is not valid UTF-8 (a lone surrogate "
                             f"{text[error.start]!r} at character {error.start}); pass text "
                             "in UTF-8") from None
    return text


def check_integer(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise HashIndexError(f"{name} must be an integer, got {value!r}")


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


def embed_texts(embedder, texts: list[str], max_tokens: int | None) -> list[EmbeddedText]:
    """Texts through a text model: pooled, with their first max_tokens token embeddings
    when a sequence variant needs them."""
    if max_tokens:
        pooled, tokens, lengths = embedder.embed_tokens(texts, max_tokens)
        return [EmbeddedText(p, t, int(n)) for p, t, n in zip(pooled, tokens, lengths)]
    return [EmbeddedText(vector) for vector in embedder.embed(texts)]
