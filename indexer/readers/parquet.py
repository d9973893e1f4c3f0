"""Parquet, streamed by record batches."""

import pyarrow as pa
import pyarrow.parquet as pq

from hashindex.errors import HashIndexError
from indexer.readers.base import Part, Reader


class ParquetReader(Reader):
    name = "parquet"
    extensions = (".parquet", ".pq")

    def open(self) -> pq.ParquetFile:
        try:
            return pq.ParquetFile(self.path)
        except (pa.ArrowInvalid, OSError) as error:
            raise HashIndexError(f"{self.path}: not a readable Parquet file ({error})") from None

    def batches(self, batch_rows):
        for batch in self.open().iter_batches(batch_size=batch_rows):
            yield pa.Table.from_batches([batch])

    def parts(self, part_rows: int) -> list[Part]:
        """Whole row groups of about part_rows rows together (the footer read, no data); a
        group larger than part_rows (pyarrow writes ~1M rows a group) cut into slices."""
        meta = self.open().metadata
        parts, groups, rows, first = [], [], 0, 1
        for group in range(meta.num_row_groups):
            size = meta.row_group(group).num_rows
            if size > part_rows:
                if groups:
                    parts.append(Part(len(parts), first, groups=tuple(groups)))
                    first += rows
                    groups, rows = [], 0
                for start in range(0, size, part_rows):
                    length = min(part_rows, size - start)
                    parts.append(Part(len(parts), first, groups=(group,), start=start,
                                      length=length))
                    first += length
                continue
            groups.append(group)
            rows += size
            if rows >= part_rows:
                parts.append(Part(len(parts), first, groups=tuple(groups)))
                first += rows
                groups, rows = [], 0
        if groups:
            parts.append(Part(len(parts), first, groups=tuple(groups)))
        return parts

    def read_part(self, part: Part) -> pa.Table:
        handle = pq.ParquetFile(self.path)
        if part.length:
            return handle.read_row_group(part.groups[0]).slice(part.start, part.length)
        return handle.read_row_groups(list(part.groups))
