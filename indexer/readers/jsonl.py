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
        lines: list[int] = []
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
                lines.append(line_number)
                if len(rows) >= batch_rows:
                    yield to_table(rows, lines, self.path)
                    rows, lines = [], []
        if rows:
            yield to_table(rows, lines, self.path)


def to_table(rows: list[dict], lines: list[int], path) -> pa.Table:
    try:
        return pa.Table.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise mixed_types(rows, lines, path, error) from None


def kind(value) -> str:
    """The JSON type of a value, as a user reads it (ints and floats are both numbers)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {str: "a string", list: "a list", dict: "an object"}.get(type(value), "a value")


def mixed_types(rows: list[dict], lines: list[int], path, error) -> HashIndexError:
    """Name the field, the two lines whose values disagree, and their types."""
    for name in dict.fromkeys(key for row in rows for key in row):
        values = [row.get(name) for row in rows]
        try:
            pa.array(values)
            continue
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
        present = [(line, value) for line, value in zip(lines, values) if value is not None]
        first_line, first = present[0]
        for line, value in present[1:]:
            if kind(value) != kind(first):
                return HashIndexError(
                    f"{path}: field {name!r} is {kind(first)} on line {first_line} but "
                    f"{kind(value)} on line {line}; give every value of a field the same type"
                )
        return HashIndexError(f"{path}: field {name!r} has values of mixed types near line "
                              f"{first_line} ({error}); give every value the same type")
    return HashIndexError(f"{path}: lines {lines[0]}–{lines[-1]} cannot be read as one table "
                          f"({error})")
