"""CSV with a header row, streamed in blocks by pyarrow; UTF-8 and quoting are checked first
(naming the byte offset, or the line a quote opens on)."""

import csv
import sys

import pyarrow as pa
import pyarrow.csv as pcsv

from hashindex.errors import HashIndexError
from indexer.readers.base import Reader, check_utf8


class CsvReader(Reader):
    name = "csv"
    extensions = (".csv", ".tsv")

    checked = False  # the file's encoding and quoting, once per reader (a build reads twice)

    def batches(self, batch_rows):
        delimiter = "\t" if self.path.suffix.lower() == ".tsv" else ","
        if not self.checked:
            check_utf8(self.path)
            check_quotes(self.path, delimiter)
            self.checked = True
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


def check_quotes(path, delimiter: str) -> None:
    """Every quoted value closed, or an error naming the line it opens on: pyarrow reads an
    unterminated quote to the end of the file, the rest of it one value of one document.
    (Python's csv in strict mode, at ~150 MB/s: less than the text model's time.)"""
    limit = csv.field_size_limit()
    csv.field_size_limit(sys.maxsize)  # a long document is no error here
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle, delimiter=delimiter, strict=True)
            start = 1  # the line the record being read starts on
            try:
                for _ in reader:
                    start = reader.line_num + 1
            except csv.Error as error:
                if "unexpected end of data" in str(error):
                    raise HashIndexError(
                        f"{path}: the quoted value that opens on line {start} is never closed, "
                        "so the rest of the file would be one value; close it, or double a "
                        'quote inside a quoted value ("")') from None
                # pyarrow would drop the quotes and keep going: the text would not be the file's
                raise HashIndexError(
                    f"{path}: line {reader.line_num}: text follows the closing quote of a "
                    f"quoted value ({error}); quote the whole value and double each quote "
                    'inside it ("")') from None
    finally:
        csv.field_size_limit(limit)
