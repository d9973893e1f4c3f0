"""`hashindex.build`, `hashindex.open` and `Index`: the library and the pipeline behind one
object, the way a Python user holds an index (lancedb's `create_table(data=...)`, FAISS's
`D, I = index.search(xq, k)`).

An Index is the opened index (a pinned generation, hashindex/engine.py) plus the writes that
change it (add, delete, compact: indexer/); after a write it opens the new generation.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from hashindex.app.api.results import BatchResults, Results
from hashindex.app.api.sources import as_input, in_words
from hashindex.errors import HashIndexError
from hashindex.results import Like

# BuildConfig's fields a caller may set by keyword beside the named arguments of build()
MANAGED = {"input", "out", "format", "columns", "variant_options"}


def build(source, path, *, bits: int = 64, variant: str | None = None,
          variant_options=None, model: str | None = None, text_column: str = "text",
          id_column: str | None = None, embedding_column: str | None = None,
          skip_empty: bool = False, ids=None, texts=None, backend: str = "auto",
          backend_options: dict | None = None,
          target_recall: float = 0.95, store_embeddings: bool = True,
          seed: int | None = None, epochs: int | None = None, train=None,
          overwrite: bool = False, show_progress: bool = False, embedder=None,
          **settings) -> Index:
    """Build an index at `path` from `source` and return it opened.

    `source`: a path (a Parquet, JSONL or CSV file, or a folder of .txt/.md files, as the
    command line reads them), a list of strings (the texts; ids are their positions) or of
    dicts (documents: `text`, `id` and metadata keys), a pandas DataFrame, a pyarrow Table or
    RecordBatchReader, or a 2-D float array of precomputed embeddings (`ids=` and `texts=`
    beside it). The same documents, seed and options give the same codes and hits whichever
    form they come in. Other BuildConfig fields (quantize, shard_rows, vector_dtype, …) go as
    keywords; `train` is a TrainConfig; `embedder` replaces the text model (anything with
    name, dimension and embed(texts)).
    """
    from indexer.build import BuildConfig, build_index
    from indexer.documents import ColumnOptions

    unknown = sorted(set(settings) - {f.name for f in dataclasses.fields(BuildConfig)}
                     ) + sorted(set(settings) & MANAGED)
    if unknown:
        raise HashIndexError(f"build: no setting {', '.join(map(repr, unknown))}; see "
                             "help(hashindex.build) and indexer.build.BuildConfig")
    train_config = training(train, seed, epochs, show_progress)
    with as_input(source, ids=ids, texts=texts) as given:
        if given.embedding_column is not None:
            if embedding_column is not None or id_column is not None:
                raise HashIndexError("build: a float array's columns are made from ids= and "
                                     "texts=; leave out embedding_column and id_column")
            embedding_column, id_column = given.embedding_column, "id" if ids is not None \
                else None
        fields = dict(input=given.path, out=str(path), format=given.format,
                      columns=ColumnOptions(text_column, id_column, embedding_column, skip_empty),
                      bits=bits, backend=backend, backend_options=backend_options or {},
                      target_recall=target_recall, store_embeddings=store_embeddings,
                      overwrite=overwrite, show_progress=show_progress, **settings)
        if model is not None:
            fields["model"] = model
        if variant is not None:
            fields["variant"] = variant
        fields["variant_options"] = variant_settings(fields.get("variant"), variant_options)
        try:
            config = BuildConfig(**fields)
            build_index(config, train_config=train_config, embedder=embedder)
        except HashIndexError as error:
            raise in_words(error, given) from None
    return open(path, embedder=embedder)


def training(train, seed, epochs, show_progress: bool):
    """The TrainConfig of a build: `train` with `seed` and `epochs` set over it."""
    from hashindex.training import TrainConfig

    if train is not None and not isinstance(train, TrainConfig):
        raise HashIndexError(f"build: train must be a hashindex.TrainConfig, not a "
                             f"{type(train).__name__}")
    train = train or TrainConfig(show_progress=show_progress)
    given = {name: value for name, value in (("seed", seed), ("epochs", epochs))
             if value is not None}
    return dataclasses.replace(train, **given) if given else train


def variant_settings(variant: str | None, options):
    """A variant's options: its Options object, or a dict of its fields."""
    if options is None or not isinstance(options, dict):
        return options
    from hashindex.models import DEFAULT_VARIANT, VARIANTS

    name = variant or DEFAULT_VARIANT
    if name not in VARIANTS:
        return None  # BuildConfig names the unknown variant
    options_class = VARIANTS[name].options
    known = {f.name for f in dataclasses.fields(options_class)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise HashIndexError(f"build: variant {name} has no option(s) {', '.join(unknown)}; "
                             f"its options are: {', '.join(sorted(known))}")
    return options_class(**options)


def open(path, *, verify: bool = False, embedder=None) -> Index:  # noqa: A001 (the API's name)
    """Open the index at `path` (`verify`: re-hash every file against its checksum);
    `embedder` replaces the text model recorded in it."""
    from hashindex.engine import HashIndex

    return Index(HashIndex.open(path, verify=verify, embedder=embedder), embedder)


class Index:
    """An opened index: search it, read documents, change it (each change a commit)."""

    def __init__(self, opened, embedder=None):
        self._opened = opened
        self._embedder = embedder  # the caller's text model, kept across reopenings
        self.path = Path(opened.root)

    # ---- reading -------------------------------------------------------------------------
    @property
    def engine(self):
        """The HashIndex underneath (the lean path: request() and top_rows)."""
        if self._opened is None:
            raise HashIndexError(f"index {self.path} is closed; hashindex.open it again")
        return self._opened

    def __len__(self) -> int:
        return len(self.engine)

    def search(self, q=None, k: int = 10, *, like: str | None = None,
               filter: dict | None = None, radius: int | None = None,
               target_recall: float | None = None, rerank_candidates: int | None = None,
               backend: str | None = None, backend_options: dict | None = None,
               rerank: bool = True) -> Results | BatchResults:
        """Search for `q`: a string, a float embedding (1-D), a code (bytes, or a 1-D uint8
        array of bits/8 bytes), or Like(id) — or many of them (a list, a 2-D float or uint8
        array), then the answer is a BatchResults in their order. `like=ID` searches with a
        stored document (left out of its own answer). `filter` on metadata ({"col": v},
        {"col": [v1, v2]}, {"col": {"gte": 1, "lt": 5}}); `target_recall` picks the fastest
        setting tuned to reach it (default: the build's); `rerank_candidates`, `backend` and
        `backend_options` set the knobs yourself; `radius` caps the codes' Hamming distance;
        `rerank=False` ranks by code distance."""
        q, options = query_and_options(q, like, dict(
            filter=filter, radius=radius, target_recall=target_recall,
            rerank_candidates=rerank_candidates, backend=backend,
            backend_options=backend_options, rerank=rerank))
        many = batch_of(q)
        if many is None:
            return Results(self.engine.search(q, k, **options))
        if not many:
            raise HashIndexError("search: the list of queries is empty")
        found = self.engine.search_batch(many, k, **options)
        return BatchResults([Results(result) for result in found], k)

    def get(self, doc_id: str) -> dict:
        """One document by id: {"id", "text", "metadata"} (an unknown id is an error)."""
        hit = self.engine.document(doc_id)
        return {"id": hit.id, "text": hit.text, "metadata": hit.metadata}

    def ids_of(self, labels):
        """The ids of rows (BatchResults.labels); -1 gives None."""
        import numpy as np

        labels = np.asarray(labels, dtype=np.int64)
        out = np.full(labels.shape, None, dtype=object)
        found = labels >= 0
        if found.any():
            out[found] = self.engine.documents.fetch(labels[found])[0]
        return out

    def labels_of(self, ids) -> list[int]:
        """The rows of ids (-1 for one not in the index): BatchResults.labels' values."""
        from hashindex.errors import UnknownDocument

        out = []
        for doc_id in ids:
            try:
                out.append(self.engine.row_of(doc_id))
            except UnknownDocument:
                out.append(-1)
        return out

    def info(self) -> dict:
        """index_info of this index: what the service's /info reports."""
        return index_info(self.engine)

    # ---- changing ------------------------------------------------------------------------
    def add(self, source, *, upsert: bool = False, ids=None, texts=None,
            show_progress: bool = False) -> Index:
        """Add documents (any source `build` takes) as one new segment; `upsert` replaces
        documents whose id is already in the index (else such an id is an error)."""
        from indexer.documents import ColumnOptions
        from indexer.update import AddConfig, add_documents

        with as_input(source, ids=ids, texts=texts, what="add") as given:
            columns = None
            if given.embedding_column is not None:
                columns = ColumnOptions("text", "id" if ids is not None else None,
                                        given.embedding_column)
            try:
                add_documents(AddConfig(str(self.path), given.path, given.format, columns,
                                        upsert=upsert, show_progress=show_progress),
                              embedder=self._embedder)
            except HashIndexError as error:
                raise in_words(error, given) from None
        return self.reopen()

    def delete(self, ids, *, strict: bool = False) -> int:
        """Delete documents by id; returns how many were deleted. `strict`: an unknown id
        fails the whole delete."""
        from hashindex.segments.writer import IndexWriter

        if isinstance(ids, str):
            ids = [ids]
        with IndexWriter(self.path) as writer:
            report = writer.delete(list(ids), strict=strict)
        self.reopen()
        return report.deleted

    def compact(self) -> str:
        """Merge the segments into one, drop deleted rows, tune again; says what it did."""
        from indexer.compaction import compact_index

        outcome = compact_index(self.path)
        self.reopen()
        return outcome.message

    def reopen(self) -> Index:
        """Open the index's newest generation (a write's, or another process's)."""
        from hashindex.engine import HashIndex

        old = self.engine
        self._opened = HashIndex.open(self.path, embedder=self._embedder)
        if self._embedder is None and old._embedder is not None:
            self._opened.adopt_embedder(old._embedder)  # the text model already loaded
        return self

    # ---- life ----------------------------------------------------------------------------
    def close(self) -> None:
        """Let go of the opened files and the text model."""
        self._opened = None

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._opened is None:
            return f"Index({str(self.path)!r}, closed)"
        manifest = self._opened.manifest
        return (f"Index({str(self.path)!r}: {manifest.documents} documents, "
                f"{manifest.bits}-bit {manifest.variant} codes, backend {manifest.backend})")


def query_and_options(q, like, options: dict) -> tuple:
    """(the query, the options given): `like=ID` made Like(ID), exactly one query, and only
    the options set (None and rerank=True are the defaults), so that equal calls share one
    checked request."""
    if like is not None:
        if q is not None:
            raise HashIndexError("search: give a query or like=, not both")
        q = Like(like)
    if q is None:
        raise HashIndexError("search: give a query (text, embedding, code or Like(id)) "
                             "or like=ID")
    given = {name: value for name, value in options.items() if value is not None}
    if given.get("rerank") is True:
        del given["rerank"]
    return q, given


def index_info(opened) -> dict:
    """An opened index's manifest (what was built, how, the tuning sweep) and whether its
    tuning is stale: Index.info and the service's /info."""
    stale = opened.tuning is not None and opened.tuning.stale(opened.row_count, len(opened))
    return {**opened.manifest.to_dict(), "tuning_stale": stale}


def batch_of(q):
    """The queries of a batch (a list or tuple, or the rows of a 2-D array), or None for one
    query."""
    if isinstance(q, (list, tuple)):
        return list(q)
    if getattr(q, "ndim", 0) == 2:
        return list(q)
    return None

