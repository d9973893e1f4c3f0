"""Writes documents and their codes into Parquet shards of at most `shard_rows` rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hashindex.faults import fault_point
from hashindex.store.layout import shard_file
from hashindex.store.shards import (
    CODE_COLUMN,
    ID_COLUMN,
    ROW_GROUP_ROWS,
    TEXT_COLUMN,
    codes_array,
    shard_schema,
)


class ShardWriter:
    def __init__(self, root: Path, metadata_schema: pa.Schema, code_bytes: int,
                 shard_rows: int):
        self.root = root
        self.schema = shard_schema(metadata_schema, code_bytes)
        self.metadata_schema = metadata_schema
        self.shard_rows = shard_rows
        self.shards: list[dict] = []
        self._writer: pq.ParquetWriter | None = None
        self._rows_in_shard = 0

    def _open_next(self) -> None:
        self.close_current()
        name = shard_file(len(self.shards))
        (self.root / name).parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(self.root / name, self.schema, compression="zstd")
        self.shards.append({"file": name, "rows": 0})
        self._rows_in_shard = 0

    def write(self, ids: list[str], texts: list[str], metadata: pa.Table,
              codes: np.ndarray) -> None:
        columns = {ID_COLUMN: pa.array(ids, pa.string()), TEXT_COLUMN: pa.array(texts, pa.string())}
        for field in self.metadata_schema:
            columns[field.name] = metadata.column(field.name).cast(field.type)
        columns[CODE_COLUMN] = codes_array(codes)
        table = pa.table(columns, schema=self.schema)
        start = 0
        while start < table.num_rows:
            if self._writer is None or self._rows_in_shard >= self.shard_rows:
                self._open_next()
            take = min(self.shard_rows - self._rows_in_shard, table.num_rows - start)
            self._writer.write_table(table.slice(start, take), row_group_size=ROW_GROUP_ROWS)
            self._rows_in_shard += take
            self.shards[-1]["rows"] += take
            start += take

    def close_current(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            fault_point("shards")

    def close(self) -> list[dict]:
        self.close_current()
        return self.shards
