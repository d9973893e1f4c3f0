"""A reader streams a file (or folder) as pyarrow tables of at most `batch_rows` rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pyarrow as pa

from hashindex.errors import HashIndexError


class Reader:
    name: ClassVar[str] = ""
    extensions: ClassVar[tuple[str, ...]] = ()

    def __init__(self, path: Path):
        self.path = path

    def batches(self, batch_rows: int) -> Iterator[pa.Table]:
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
