"""JSON Lines: one object per line, read line by line so errors can name line and offset."""

import json

import pyarrow as pa

from hashindex.errors import HashIndexError
from indexer.readers.base import Reader, decode_utf8


class JsonlReader(Reader):
    name = "jsonl"
    extensions = (".jsonl", ".ndjson")

    def batches(self, batch_rows):
        rows: list[dict] = []
        offset = 0
        with open(self.path, "rb") as handle:
            for line_number, raw in enumerate(handle, start=1):
                line = decode_utf8(raw, self.path, offset).strip()
                offset += len(raw)
                if not line:
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise HashIndexError(
                        f"{self.path}: line {line_number} is not valid JSON ({error.msg})"
                    ) from None
                if not isinstance(record, dict):
                    raise HashIndexError(
                        f"{self.path}: line {line_number} is not a JSON object"
                    )
                rows.append(record)
                if len(rows) >= batch_rows:
                    yield to_table(rows, self.path)
                    rows = []
        if rows:
            yield to_table(rows, self.path)


def to_table(rows: list[dict], path) -> pa.Table:
    try:
        return pa.Table.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise HashIndexError(f"{path}: values of one field have mixed types ({error})") from None
