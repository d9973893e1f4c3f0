"""What a Python caller hands to build or add, made into an input the pipeline reads.

A path is read as the command line reads it. Anything held in memory (strings, dicts, a pandas
DataFrame, a pyarrow Table or RecordBatchReader, a float array) is written once as one Parquet
file in a private temporary folder and read from there, so that the build takes the one path
the command line takes (same rows, same seed, same options: the same codes and hits) and a
stream larger than memory is never gathered. The folder is removed when the build ends.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hashindex.errors import HashIndexError

EMBEDDING_COLUMN = "embedding"  # the column a float array's rows are written to


@dataclass(frozen=True)
class Input:
    """Where the pipeline reads a source, and what to call it in errors."""

    path: str
    format: str | None  # None: by extension, as the command line
    described: str  # "the DataFrame given to build" (a path: the path itself)
    embedding_column: str | None = None  # set when the source is a float array


def describe(source) -> str:
    return f"the {type(source).__name__} given"


@contextmanager
def as_input(source, *, ids=None, texts=None, what: str = "build"):
    """Yield an Input for `source`; a temporary Parquet file for anything not a path.
    `ids` and `texts` go with a float array (its rows are the documents' embeddings)."""
    if isinstance(source, (str, os.PathLike)):
        if ids is not None or texts is not None:
            raise HashIndexError(f"{what}: ids= and texts= go with a float array; a file's ids "
                                 "and texts are its columns (id_column=, text_column=)")
        yield Input(str(source), None, str(source))
        return
    table, embedding_column = None, None
    if _is_array(source):
        table, embedding_column = array_table(source, ids, texts, what), EMBEDDING_COLUMN
    elif ids is not None or texts is not None:
        raise HashIndexError(f"{what}: ids= and texts= go with a float array; give "
                             f"{describe(source)} its ids and texts as columns")
    folder = Path(tempfile.mkdtemp(prefix="hashindex-source-"))
    try:
        path = folder / "source.parquet"
        write_parquet(source if table is None else table, path, what)
        yield Input(str(path), "parquet", f"{describe(source)} to {what}", embedding_column)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _is_array(source) -> bool:
    return type(source).__module__ == "numpy" and type(source).__name__ == "ndarray"


def array_table(vectors, ids, texts, what: str):
    """A float array's rows as an `embedding` column, with `id` and `text` when given."""
    import numpy as np
    import pyarrow as pa

    if vectors.ndim != 2 or not np.issubdtype(vectors.dtype, np.floating):
        raise HashIndexError(f"{what}: a float array of embeddings must be 2-D (documents × "
                             f"dimension), got shape {vectors.shape} of {vectors.dtype}")
    rows, dim = vectors.shape
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    columns = {EMBEDDING_COLUMN: pa.FixedSizeListArray.from_arrays(flat, dim)}
    for name, values in (("id", ids), ("text", texts)):
        if values is None:
            continue
        values = list(values)
        if len(values) != rows:
            raise HashIndexError(f"{what}: {name}s= has {len(values)} entries for {rows} "
                                 "embeddings; give one per row")
        columns[name] = pa.array([None if v is None else str(v) for v in values], pa.string())
    return pa.table(columns)


def write_parquet(source, path: Path, what: str) -> None:
    """Every in-memory kind of source, streamed into one Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(source, pa.RecordBatchReader):
        with pq.ParquetWriter(path, source.schema) as writer:
            for batch in source:
                writer.write_batch(batch)
        return
    pq.write_table(to_table(source, what), path)


def to_table(source, what: str):
    """A pyarrow Table of the documents held in `source`."""
    import pyarrow as pa

    if isinstance(source, pa.Table):
        return source
    if isinstance(source, pa.RecordBatch):
        return pa.Table.from_batches([source])
    if type(source).__module__.startswith("pandas") and type(source).__name__ == "DataFrame":
        try:
            return pa.Table.from_pandas(source, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise HashIndexError(f"{what}: the DataFrame's columns do not convert to Arrow "
                                 f"({error}); give each column one type") from None
    if isinstance(source, (list, tuple)):
        return list_table(source, what)
    raise HashIndexError(
        f"{what}: cannot read a {type(source).__name__}; give a path, a list of strings or "
        "dicts, a pandas DataFrame, a pyarrow Table or RecordBatchReader, or a 2-D float "
        "array of embeddings (with ids=)")


def list_table(records, what: str):
    """A list of strings (the texts; ids their positions in the list, from 0, so that
    `texts[int(hit.id)]` is the hit) or of dicts (one document each, as a JSONL line)."""
    import pyarrow as pa

    if not records:
        raise HashIndexError(f"{what}: the list is empty; give at least one document")
    if all(isinstance(r, str) for r in records):
        return pa.table({"id": pa.array([str(i) for i in range(len(records))]),
                         "text": pa.array(records, pa.string())})
    if all(isinstance(r, dict) for r in records):
        try:
            return pa.Table.from_pylist(list(records))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise HashIndexError(f"{what}: the dicts do not make one table ({error}); give "
                                 "each key one type in every dict") from None
    position, odd = next((i, r) for i, r in enumerate(records)
                         if not isinstance(r, type(records[0])) or
                         not isinstance(r, (str, dict)))
    raise HashIndexError(f"{what}: item {position} of the list is a {type(odd).__name__}; give "
                         "a list of strings (texts) or of dicts (documents), not a mix")


def in_words(error: HashIndexError, source: Input) -> HashIndexError:
    """The pipeline's error with the temporary file's path replaced by what the user gave."""
    if source.path == source.described:
        return error
    return HashIndexError(str(error).replace(source.path, source.described))
