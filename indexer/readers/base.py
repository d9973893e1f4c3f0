"""A reader streams a file (or folder) as pyarrow tables of at most `batch_rows` rows; a
reader whose input can be cut (Parquet, JSONL) also plans parts that workers read apart."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pyarrow as pa

from hashindex.errors import HashIndexError


@dataclass(frozen=True)
class Part:
    """A slice of the input that a worker reads on its own: Parquet row groups (or rows
    start..start+length of one large group), or a JSONL byte range at line ends."""

    number: int
    first_row: int  # its first data row in the whole input, counting from 1
    groups: tuple[int, ...] = ()
    start: int = 0  # Parquet: first row within the one group (with length); JSONL: byte
    length: int = 0  # Parquet: rows (0: the whole groups); JSONL: bytes
    first_line: int = 1


class Reader:
    name: ClassVar[str] = ""
    extensions: ClassVar[tuple[str, ...]] = ()

    def __init__(self, path: Path):
        self.path = path

    def batches(self, batch_rows: int) -> Iterator[pa.Table]:
        raise NotImplementedError

    def parts(self, part_rows: int) -> list[Part] | None:
        """The input cut into parts of about part_rows rows, in input order; None: this
        format cannot be cut (it is read whole, in order)."""
        return None

    def read_part(self, part: Part) -> pa.Table:
        """One part of `parts()`, as a table."""
        raise NotImplementedError


def check_utf8(path: Path, chunk_bytes: int = 1 << 20) -> None:
    """Raise naming the byte offset of the first invalid UTF-8 sequence in the file."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(chunk_bytes)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:
                raise HashIndexError(
                    f"{path}: invalid UTF-8 at byte offset {offset + error.start}; "
                    "re-encode the file as UTF-8"
                ) from None
            if not chunk:
                return
            offset += len(chunk)


def decode_utf8(raw: bytes, path: Path, offset: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise HashIndexError(
            f"{path}: invalid UTF-8 at byte offset {offset + error.start}; "
            "re-encode the file as UTF-8"
        ) from None
