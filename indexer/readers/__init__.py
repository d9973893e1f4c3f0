"""The registry of input readers, chosen by --format or by the file's extension. Each reads
its input in batches (`batches`); those whose input can be cut also plan parts for workers to
read apart (`parts`, `read_part`: Parquet, JSONL)."""

from __future__ import annotations

from pathlib import Path

from hashindex.errors import HashIndexError
from indexer.readers.base import Part, Reader
from indexer.readers.csv import CsvReader
from indexer.readers.jsonl import JsonlReader
from indexer.readers.parquet import ParquetReader
from indexer.readers.textdir import TextDirReader

__all__ = ["READERS", "Part", "Reader", "open_reader"]

READERS: dict[str, type[Reader]] = {
    cls.name: cls for cls in (ParquetReader, JsonlReader, CsvReader, TextDirReader)
}


def open_reader(path: str | Path, format: str | None = None) -> Reader:
    path = Path(path)
    if not path.exists():
        raise HashIndexError(f"input {path} does not exist")
    if format is not None:
        if format not in READERS:
            raise HashIndexError(
                f"unknown --format {format!r}; choose one of {', '.join(READERS)}"
            )
        return READERS[format](path)
    if path.is_dir():
        return TextDirReader(path)
    for cls in READERS.values():
        if path.suffix.lower() in cls.extensions:
            return cls(path)
    known = ", ".join(ext for cls in READERS.values() for ext in cls.extensions)
    raise HashIndexError(
        f"unknown format for {path} (extension {path.suffix or 'none'}); use one of {known}, "
        f"a folder of .txt/.md files, or pass --format ({', '.join(READERS)})"
    )
