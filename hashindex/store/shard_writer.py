"""Writes documents and their codes into Parquet shards of at most `shard_rows` rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hashindex.errors import HashIndexError
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
    """Shards under `root`/`folder` (a segment's folder), named relative to root."""

    def __init__(self, root: Path, metadata_schema: pa.Schema, code_bytes: int,
                 shard_rows: int, *, folder: str = "", first_number: int = 0):
        self.root = root
        self.folder = folder
        self.first_number = first_number  # a distributed build's part writes its own number
        self.schema = shard_schema(metadata_schema, code_bytes)
        self.metadata_schema = metadata_schema
        self.shard_rows = shard_rows
        self.shards: list[dict] = []
        self._writer: pq.ParquetWriter | None = None
        self._rows_in_shard = 0

    def _open_next(self) -> None:
        self.close_current()
        name = shard_file(self.first_number + len(self.shards), self.folder)
        (self.root / name).parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(self.root / name, self.schema, compression="zstd")
        self.shards.append({"file": name, "rows": 0})
        self._rows_in_shard = 0

    def write(self, ids: list[str], texts: list[str], metadata: pa.Table,
              codes: np.ndarray) -> None:
        """Documents with their codes; a metadata column the batch lacks is written as nulls,
        and one whose values do not fit the column's type is a one-line error naming it."""
        columns = {ID_COLUMN: pa.array(ids, pa.string()), TEXT_COLUMN: pa.array(texts, pa.string())}
        for field in self.metadata_schema:
            if field.name not in metadata.column_names:
                columns[field.name] = pa.nulls(len(ids), field.type)
                continue
            given = metadata.column(field.name).type
            try:
                if (pa.types.is_boolean(given) != pa.types.is_boolean(field.type)
                        and not pa.types.is_null(given)):
                    raise pa.ArrowInvalid("true/false is not a number")  # arrow would cast it
                columns[field.name] = metadata.column(field.name).cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                raise HashIndexError(
                    f"column {field.name!r} holds {metadata.column(field.name).type} values that "
                    f"do not fit the index's {field.type}; give it values of that type"
                ) from None
        columns[CODE_COLUMN] = codes_array(codes)
        self.write_table(pa.table(columns, schema=self.schema))

    def write_table(self, table: pa.Table) -> None:
        """Rows already in the shard schema (a compaction copies them as they are)."""
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

    def close(self, at_least_one: bool = False) -> list[dict]:
        """The shards written; `at_least_one`: an empty shard when no row came, so that the
        documents' schema is on disk even for none."""
        if at_least_one and not self.shards:
            self._open_next()
        self.close_current()
        return self.shards
