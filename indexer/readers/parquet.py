"""Parquet, streamed by record batches."""

import pyarrow as pa
import pyarrow.parquet as pq

from hashindex.errors import HashIndexError
from indexer.readers.base import Reader


class ParquetReader(Reader):
    name = "parquet"
    extensions = (".parquet", ".pq")

    def batches(self, batch_rows):
        try:
            handle = pq.ParquetFile(self.path)
        except (pa.ArrowInvalid, OSError) as error:
            raise HashIndexError(f"{self.path}: not a readable Parquet file ({error})") from None
        for batch in handle.iter_batches(batch_size=batch_rows):
            yield pa.Table.from_batches([batch])
