"""JSON Lines: one object per line, read line by line so errors can name line and offset."""

import json

import pyarrow as pa

from hashindex.errors import HashIndexError
from indexer.readers.base import Part, Reader, decode_utf8


class JsonlReader(Reader):
    name = "jsonl"
    extensions = (".jsonl", ".ndjson")

    def batches(self, batch_rows):
        with open(self.path, "rb") as handle:
            yield from self.tables(handle, batch_rows, first_line=1, offset=0)

    def parts(self, part_rows: int) -> list[Part]:
        """Byte ranges cut at line ends, about part_rows records each (one pass over the
        bytes), each knowing its first row and line for the errors."""
        parts, start, offset, rows, line, first_row, first_line = [], 0, 0, 0, 0, 1, 1
        with open(self.path, "rb") as handle:
            for raw in handle:
                line += 1
                offset += len(raw)
                rows += bool(raw.decode("utf-8", "replace").strip())  # as tables() counts
                if rows >= part_rows:
                    parts.append(Part(len(parts), first_row, start=start, length=offset - start,
                                      first_line=first_line))
                    start, first_row, first_line, rows = offset, first_row + rows, line + 1, 0
        if offset > start:
            parts.append(Part(len(parts), first_row, start=start, length=offset - start,
                              first_line=first_line))
        return parts

    def read_part(self, part: Part) -> pa.Table:
        """The lines in the part's bytes [start, start + length) as one table."""
        with open(self.path, "rb") as handle:
            handle.seek(part.start)
            data = handle.read(part.length)
        lines = [line + b"\n" for line in data.split(b"\n")]  # as a file iterates: \n only
        lines[-1] = lines[-1][:-1]
        tables = list(self.tables([line for line in lines if line], 1 << 62, part.first_line,
                                  part.start))
        return tables[0] if tables else pa.table({})

    def tables(self, lines, batch_rows: int, first_line: int, offset: int):
        """Tables of at most batch_rows records from raw lines (line numbers and byte offsets
        counted from first_line and offset, for the errors)."""
        rows: list[dict] = []
        numbers: list[int] = []
        for line_number, raw in enumerate(lines, start=first_line):
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
            numbers.append(line_number)
            if len(rows) >= batch_rows:
                yield to_table(rows, numbers, self.path)
                rows, numbers = [], []
        if rows:
            yield to_table(rows, numbers, self.path)


INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def to_table(rows: list[dict], lines: list[int], path) -> pa.Table:
    try:
        return pa.Table.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise mixed_types(rows, lines, path, error) from None
    except (UnicodeEncodeError, OverflowError):  # JSON holds what Arrow cannot
        raise unstorable_value(rows, lines, path) from None


def unstorable(value) -> str | None:
    """Why JSON's value cannot be stored (a lone surrogate, an integer beyond int64), or
    None; nested lists and objects are searched."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            escape = "\\u" + f"{ord(value[error.start]):04x}"
            return (f"holds the lone surrogate escape {escape}, which is no character; "
                    "fix or drop that escape")
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if not INT64_MIN <= value <= INT64_MAX:
            return (f"holds the integer {value}, beyond the 64-bit range; write it as a string "
                    "(in quotes) or a float")
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else ()
    for key, item in items:
        why = unstorable(key) if isinstance(key, str) else None
        if why is None:
            why = unstorable(item)
        if why is not None:
            return why
    return None


def unstorable_value(rows: list[dict], lines: list[int], path) -> HashIndexError:
    """Name the line and field of the first value Arrow cannot store."""
    for row, line in zip(rows, lines):
        for name, value in row.items():
            why = unstorable(name)
            if why is not None:
                return HashIndexError(f"{path}: line {line}: a field name {why}")
            why = unstorable(value)
            if why is not None:
                return HashIndexError(f"{path}: line {line}, field {name!r} {why}")
    return HashIndexError(f"{path}: lines {lines[0]}–{lines[-1]} hold a value that cannot be "
                          "stored (a lone surrogate or an integer beyond 64 bits)")


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
