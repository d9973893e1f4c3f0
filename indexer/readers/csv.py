"""CSV with a header row, streamed in blocks by pyarrow; UTF-8 is checked first (with offset)."""

import pyarrow as pa
import pyarrow.csv as pcsv

from hashindex.errors import HashIndexError
from indexer.readers.base import Reader, check_utf8


class CsvReader(Reader):
    name = "csv"
    extensions = (".csv", ".tsv")

    def batches(self, batch_rows):
        check_utf8(self.path)
        delimiter = "\t" if self.path.suffix.lower() == ".tsv" else ","
        try:
            stream = pcsv.open_csv(
                self.path,
                read_options=pcsv.ReadOptions(block_size=1 << 22),
                parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
                convert_options=pcsv.ConvertOptions(strings_can_be_null=False),
            )
            pending: list[pa.RecordBatch] = []
            count = 0
            for batch in stream:
                pending.append(batch)
                count += batch.num_rows
                while count >= batch_rows:
                    table = pa.Table.from_batches(pending)
                    yield table.slice(0, batch_rows)
                    rest = table.slice(batch_rows)
                    pending, count = rest.to_batches(), rest.num_rows
            if count:
                yield pa.Table.from_batches(pending)
        except pa.ArrowInvalid as error:
            raise HashIndexError(f"{self.path}: cannot parse CSV ({error})") from None
