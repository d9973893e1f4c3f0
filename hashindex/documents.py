"""A hit's id, text and metadata: read from the Parquet shards (a row group per hit), or,
once an index answers queries repeatedly, from every row held in memory.

Decoding a row group costs ~0.1 ms a hit; held as Python values, ten hits' id and text cost
~1.5 µs (compact UTF-8 bytes and offsets, decoded per hit, cost ~6). A one-shot query never
pays the load: it comes after HOLD_AFTER fetches, and only where the documents fit the budget
(their decoded size, and a Python object's overhead for every value).
"""

from __future__ import annotations

import threading

import numpy as np

from hashindex.errors import UnknownDocument
from hashindex.results import Hit
from hashindex.store.shards import ID_COLUMN, TEXT_COLUMN, ShardReader

HOLD_AFTER = 16  # fetches before the documents are loaded into memory (a service: at once)
HOLD_BYTES = 1 << 30  # default budget for the held documents, in bytes
PYTHON_VALUE_BYTES = 56  # a value's overhead as a Python object (a str's header), about


class Documents:
    """Id, text and metadata by row, for the hits of one pinned build."""

    def __init__(self, shards: ShardReader, metadata_columns: list[str],
                 hold_bytes: int = HOLD_BYTES, hold_after: int = HOLD_AFTER):
        self.shards = shards
        names = set(shards.schema.names)
        self.metadata_columns = [name for name in metadata_columns if name in names]
        self.hold_bytes = hold_bytes
        self.hold_after = hold_after
        self.fetches = 0
        self.columns: dict[str, list] | None = None  # held: name → every row's value
        self._lock = threading.Lock()

    def hold(self, max_bytes: int | None = None) -> bool:
        """Load every row's id, text and metadata into memory now, if that takes at most
        max_bytes (default: the budget); False when over it."""
        if self.columns is not None:
            return True
        limit = self.hold_bytes if max_bytes is None else max_bytes
        if self.needed_bytes() > limit:
            return False
        with self._lock:
            if self.columns is None:
                self.columns = {name: self.shards.column_array(name).to_pylist()
                                for name in (ID_COLUMN, TEXT_COLUMN, *self.metadata_columns)}
        return True

    def needed_bytes(self) -> int:
        """What holding every row takes, about (from the shards' footers: nothing is read)."""
        rows = int(self.shards.row_starts[-1])
        return self.shards.decoded_bytes() + rows * PYTHON_VALUE_BYTES * (
            2 + len(self.metadata_columns))

    @property
    def held_bytes(self) -> int:
        return self.needed_bytes() if self.columns is not None else 0

    def hits(self, rows: np.ndarray, distances: np.ndarray, scores: np.ndarray) -> list[Hit]:
        """The rows as Hits, with their distances and scores."""
        if not len(rows):
            return []
        rows = np.asarray(rows, dtype=np.int64)
        ids, texts, metadata = self.fetch(rows)
        return [Hit(*fields) for fields in zip(ids, distances.tolist(), scores.tolist(), texts,
                                               metadata, rows.tolist())]

    def fetch(self, rows: np.ndarray) -> tuple[list, list, list[dict]]:
        """(ids, texts, metadata dicts) of the rows, in the order given."""
        if self.columns is None:
            self.fetches += 1
            if self.fetches >= self.hold_after and self.hold_bytes:
                if not self.hold():
                    self.hold_bytes = 0  # over the budget: read per query from now on
        if self.columns is not None:
            columns, picked = self.columns, rows.tolist()
            ids = [columns[ID_COLUMN][row] for row in picked]
            texts = [columns[TEXT_COLUMN][row] for row in picked]
            metadata = {name: [columns[name][row] for row in picked]
                        for name in self.metadata_columns}
        else:
            table = self.shards.take(rows)
            ids = table.column(ID_COLUMN).to_pylist()
            texts = table.column(TEXT_COLUMN).to_pylist()
            metadata = {name: table.column(name).to_pylist() for name in self.metadata_columns}
        if not metadata:
            return ids, texts, [{} for _ in ids]
        names = list(metadata)
        return ids, texts, [dict(zip(names, values)) for values in zip(*metadata.values())]


class RowsById:
    """A live document's row by its id: the id → row map read from the shards on first use
    (a `like` query, `get`, an id filter's lookups), deleted rows left out."""

    def __init__(self, shards: ShardReader, live: np.ndarray | None, root: str):
        self.shards, self.live, self.root = shards, live, root
        self.rows: dict[str, int] | None = None

    def __call__(self, doc_id) -> int:
        if self.rows is None:
            ids = self.shards.column_array(ID_COLUMN).to_pylist()
            self.rows = {str(i): row for row, i in enumerate(ids)
                         if self.live is None or self.live[row]}
        row = self.rows.get(str(doc_id))
        if row is None:
            raise UnknownDocument(str(doc_id), self.root)
        return row
