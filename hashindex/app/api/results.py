"""Search results as a Python user takes them: a list of hits, or a DataFrame, an Arrow table,
plain dicts; a batch also as FAISS-style arrays (`D, I = results.scores, results.labels`).

The same classes hold a local index's answers and the HTTP client's, so that code written
against one runs against the other.
"""

from __future__ import annotations

from hashindex.results import SearchResult

STATISTICS = ("backend", "setting", "tuned_recall", "ranking", "reranked", "radius",
              "candidates", "buckets_touched", "documents_touched", "exact", "scanned",
              "filter_examined", "filter_passed", "notes")


class Results:
    """One query's hits, best first (hashindex.results.Hit: id, score, distance, text,
    metadata, and the row in the opened index, -1 over HTTP), and how they were found
    (`statistics`: the backend and setting that ran, the recall it was tuned to, notes such
    as a target not met). A view of the engine's SearchResult: nothing is copied."""

    __slots__ = ("result",)

    def __init__(self, result: SearchResult):
        self.result = result

    @classmethod
    def from_json(cls, answer: dict) -> Results:
        """From the service's /search answer."""
        return cls(SearchResult.from_dict(answer))

    @property
    def hits(self) -> list:
        return self.result.hits

    @property
    def statistics(self) -> dict:
        return {name: getattr(self.result, name) for name in STATISTICS}

    def __len__(self) -> int:
        return len(self.hits)

    def __iter__(self):
        return iter(self.hits)

    def __getitem__(self, position):
        return self.hits[position]

    def __getattr__(self, name):  # results.backend, results.notes, …
        if name in STATISTICS:
            return getattr(self.result, name)
        raise AttributeError(f"Results has no attribute {name!r}")

    @property
    def ids(self) -> list[str]:
        return [h.id for h in self.hits]

    @property
    def scores(self) -> list[float]:
        return [h.score for h in self.hits]

    def to_list(self) -> list[dict]:
        """The hits as dicts: id, score, distance, text, metadata."""
        return [h.to_dict() for h in self.hits]

    def to_arrow(self):
        """A pyarrow Table: id, score, distance, text, then one column per metadata key."""
        import pyarrow as pa

        if self.hits:
            return records_table(flat_records(self.hits))
        return pa.table({"id": pa.array([], pa.string()), "score": pa.array([], pa.float64()),
                         "distance": pa.array([], pa.int64()),
                         "text": pa.array([], pa.string())})

    def to_pandas(self):
        """A DataFrame of the hits (as to_arrow's columns)."""
        return self.to_arrow().to_pandas()

    def __repr__(self) -> str:
        shown = ", ".join(f"{h.id!r} {h.score:.3f}" for h in self.hits[:3])
        more = ", …" if len(self.hits) > 3 else ""
        return f"Results({len(self.hits)} hits: {shown}{more})"


def flat_records(hits, query: int | None = None) -> list[dict]:
    """Hits as flat rows: metadata keys become columns (one a hit field's name is kept as
    `metadata.<key>`)."""
    out = []
    for rank, h in enumerate(hits):
        row = {} if query is None else {"query": query, "rank": rank}
        row.update(id=h.id, score=h.score, distance=h.distance, text=h.text)
        for key, value in h.metadata.items():
            row[f"metadata.{key}" if key in row or key in ("query", "rank") else key] = value
        out.append(row)
    return out


def records_table(rows: list[dict]):
    """Rows whose keys may differ (metadata columns a hit lacks): every key a column, null
    where a row has none."""
    import pyarrow as pa

    names = list(dict.fromkeys(key for row in rows for key in row))
    return pa.table({name: [row.get(name) for row in rows] for name in names})


class BatchResults(list):
    """Many queries' Results, in the order asked; `scores` and `labels` (or `ids`) as
    (queries × k) arrays the way FAISS returns them, padded below k (NaN, -1, None)."""

    def __init__(self, results, k: int):
        super().__init__(results)
        self.k = k

    @property
    def scores(self):
        """float32 (queries, k): each row's hit scores, best first, NaN past its hits."""
        import numpy as np

        out = np.full((len(self), self.k), np.nan, dtype=np.float32)
        for i, result in enumerate(self):
            out[i, :len(result)] = result.scores
        return out

    @property
    def labels(self):
        """int64 (queries, k): the hits' rows in the opened index, -1 past its hits
        (`Index.ids_of(labels)` gives their ids, `Index.labels_of(ids)` the reverse)."""
        import numpy as np

        out = np.full((len(self), self.k), -1, dtype=np.int64)
        for i, result in enumerate(self):
            out[i, :len(result)] = [h.row for h in result.hits]
        return out

    @property
    def ids(self):
        """object (queries, k): the hits' ids, None past its hits."""
        import numpy as np

        out = np.full((len(self), self.k), None, dtype=object)
        for i, result in enumerate(self):
            out[i, :len(result)] = result.ids
        return out

    def to_list(self) -> list[list[dict]]:
        return [result.to_list() for result in self]

    def to_arrow(self):
        """One table of every hit: query (its position), rank, then Results.to_arrow's."""
        import pyarrow as pa

        rows = [row for i, result in enumerate(self) for row in flat_records(result.hits, i)]
        return records_table(rows) if rows else pa.table(
            {"query": pa.array([], pa.int64()), "rank": pa.array([], pa.int64()),
             "id": pa.array([], pa.string())})

    def to_pandas(self):
        return self.to_arrow().to_pandas()

    def __repr__(self) -> str:
        return f"BatchResults({len(self)} queries, k={self.k})"
