"""Parquet shards: schema, and random access to rows by global row id.

Shards are written with small row groups so that fetching a few result rows reads only the
row groups that hold them; recently read row groups are kept in a small LRU cache.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hashindex.errors import HashIndexError

ID_COLUMN = "id"
TEXT_COLUMN = "text"
CODE_COLUMN = "code"
RESERVED_COLUMNS = (ID_COLUMN, TEXT_COLUMN, CODE_COLUMN)
# Fetching a hit reads its whole row group: measured on 200 000 short documents (id, text,
# metadata, code), one random row group costs 0.44 ms at 4 096 rows, 0.14 at 1 024, 0.08 at
# 256 and 0.07 at 64, for a file 0 %, 4 %, 25 % and 117 % larger than at 4 096. A top-10 at
# 1M documents touches ~10 row groups, so 256 rows: ~0.8 ms instead of ~4.4 ms per query.
ROW_GROUP_ROWS = 256


def shard_schema(metadata: pa.Schema, code_bytes: int) -> pa.Schema:
    fields = [pa.field(ID_COLUMN, pa.string(), nullable=False),
              pa.field(TEXT_COLUMN, pa.string())]
    fields += list(metadata)
    fields.append(pa.field(CODE_COLUMN, pa.binary(code_bytes), nullable=False))
    return pa.schema(fields)


def codes_array(codes: np.ndarray) -> pa.FixedSizeBinaryArray:
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(codes.shape[1]), len(codes), [None, pa.py_buffer(codes.tobytes())]
    )


class ShardReader:
    """Global row id → row, across the shards listed in the manifest.

    Every shard is memory-mapped when the reader is made, so the reader keeps reading the build
    it was opened on even after a rebuild replaces the files at those paths; each shard's
    footer row count is checked against the manifest then (a footer read, not a data read)."""

    def __init__(self, root: Path, shards: list[dict], cache_groups: int = 64):
        self.root = root
        self.shards = shards
        self.row_starts = np.cumsum([0] + [s["rows"] for s in shards])
        self._files: dict[int, pq.ParquetFile] = {}
        self._group_starts: dict[int, np.ndarray] = {}
        self._cache: OrderedDict[tuple[int, int], pa.Table] = OrderedDict()
        self._cache_groups = cache_groups
        self._lock = threading.Lock()
        for number, shard in enumerate(shards):
            # no pre-buffering, no threads: a hit reads one small row group, where both only
            # add overhead (10 random row groups at 1M: 1.9 ms with them, 0.85 ms without)
            handle = pq.ParquetFile(pa.memory_map(str(root / shard["file"])), pre_buffer=False)
            if handle.metadata.num_rows != shard["rows"]:
                raise HashIndexError(
                    f"index file {root / shard['file']} holds {handle.metadata.num_rows} rows "
                    f"but the manifest says {shard['rows']}; rebuild the index"
                )
            self._files[number] = handle
            sizes = [handle.metadata.row_group(i).num_rows for i in range(handle.num_row_groups)]
            self._group_starts[number] = np.cumsum([0, *sizes])

    def _file(self, shard: int) -> pq.ParquetFile:
        return self._files[shard]

    def _group(self, shard: int, group: int) -> pa.Table:
        key = (shard, group)
        with self._lock:  # a service reads from many threads; a ParquetFile is not safe
            if key in self._cache:  # to read from two at once (crashes, not errors)
                self._cache.move_to_end(key)
                return self._cache[key]
            table = self._file(shard).read_row_group(group, use_threads=False)
            self._cache[key] = table
            if len(self._cache) > self._cache_groups:
                self._cache.popitem(last=False)
            return table

    def decoded_bytes(self) -> int:
        """What every row takes decoded in memory (from the footers; nothing is read)."""
        return sum(handle.metadata.row_group(i).total_byte_size
                   for handle in self._files.values() for i in range(handle.num_row_groups))

    @property
    def schema(self) -> pa.Schema:
        return self._files[0].schema_arrow if self._files else pa.schema([])

    def column_array(self, name: str) -> pa.ChunkedArray:
        """One column of every row, in row order, as arrow (for filters: no Python objects)."""
        with self._lock:
            chunks = [self._file(n).read(columns=[name]).column(name)
                      for n in range(len(self._files))]
        return pa.chunked_array([c for chunked in chunks for c in chunked.chunks],
                                type=self.schema.field(name).type)

    def take(self, rows: np.ndarray) -> pa.Table:
        """The rows (global ids) in the order given, as one table."""
        rows = np.asarray(rows, dtype=np.int64)
        pieces, order = [], []
        shard_of = np.searchsorted(self.row_starts, rows, side="right") - 1
        for shard in np.unique(shard_of):
            self._file(int(shard))
            in_shard = np.flatnonzero(shard_of == shard)
            local = rows[in_shard] - self.row_starts[shard]
            starts = self._group_starts[int(shard)]
            group_of = np.searchsorted(starts, local, side="right") - 1
            for group in np.unique(group_of):
                picked = np.flatnonzero(group_of == group)
                table = self._group(int(shard), int(group))
                pieces.append(table.take(row_indices(local[picked] - starts[group])))
                order.append(in_shard[picked])
        if not pieces:
            return None
        combined = pa.concat_tables(pieces)
        inverse = np.empty(len(rows), dtype=np.int64)
        inverse[np.concatenate(order)] = np.arange(len(rows))
        return combined.take(row_indices(inverse))


def row_indices(rows: np.ndarray) -> pa.Array:
    """Int64 arrow indices over the numpy buffer: `pa.array` would first import pandas to
    check the input's type, ~0.15 s of a cold one-shot query."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(rows), [None, pa.py_buffer(rows)])
