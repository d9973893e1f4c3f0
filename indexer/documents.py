"""Turn raw input tables into validated document batches: ids, texts, metadata, embeddings.

Every check names the file, the column or the rows, and what to do about it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hashindex.errors import HashIndexError
from hashindex.store.shards import RESERVED_COLUMNS
from hashindex.validation import (
    FLAG,
    check_arguments,
    name_rows,
    unit_length,
    vector_norms,
)
from indexer.readers import Reader

DEFAULT_ID_COLUMN = "id"


@dataclass(frozen=True)
class ColumnOptions:
    text_column: str = "text"
    id_column: str | None = None  # None: a column named "id" if there is one, else row numbers
    embedding_column: str | None = None  # precomputed embeddings: the model is skipped
    skip_empty: bool = False

    def __post_init__(self):
        optional = ((str, type(None)), "a column name (str) or None")
        check_arguments("ColumnOptions", vars(self), {
            "text_column": ((str,), "a column name (str)"), "id_column": optional,
            "embedding_column": optional, "skip_empty": FLAG})

    @classmethod
    def of_build(cls, record: dict, **changes) -> ColumnOptions:
        """The options a build ran with, as its manifest records them (fields this version
        does not know are left out), with `changes` (an add's flags) applied: the one place
        an index's column options are rebuilt."""
        return replace(cls(**{k: v for k, v in record.items() if k in cls.__dataclass_fields__}),
                       **changes)


def column_options(value, owner: str) -> ColumnOptions:
    """`columns` as a Python caller may give it: ColumnOptions, or a mapping of its fields."""
    if isinstance(value, ColumnOptions):
        return value
    names = ", ".join(ColumnOptions.__dataclass_fields__)
    if isinstance(value, Mapping):
        unknown = sorted(map(str, set(value) - set(ColumnOptions.__dataclass_fields__)))
        if unknown:
            raise HashIndexError(f"{owner}: columns has no field(s) {', '.join(unknown)}; its "
                                 f"fields are: {names}")
        return ColumnOptions(**value)
    raise HashIndexError(f"{owner}: columns={value!r} must be a ColumnOptions or a mapping of "
                         f"its fields ({names}), not a {type(value).__name__}")


@dataclass
class DocumentBatch:
    ids: list[str]
    texts: list[str]
    metadata: pa.Table
    embeddings: np.ndarray | None  # float32 (n, d) when the input carries them
    skipped: int = 0


class DocumentStream:
    """Iterates a reader's tables as DocumentBatch objects (rows numbered from 1)."""

    def __init__(self, reader: Reader, options: ColumnOptions):
        self.reader = reader
        self.options = options
        self.path = reader.path
        self.embedding_dim: int | None = None

    def resolve_id_column(self, table: pa.Table) -> None:
        """Without --id-column, a column named `id` holds the ids; only without one do the
        row numbers."""
        if self.options.id_column is None and DEFAULT_ID_COLUMN in table.column_names:
            self.options = replace(self.options, id_column=DEFAULT_ID_COLUMN)

    @property
    def needs_text(self) -> bool:
        """Text is what gets embedded, unless the input carries its embeddings: then a text
        column is optional (kept as the documents' text when present)."""
        return self.options.embedding_column is None

    def check_columns(self, table: pa.Table) -> None:
        names = table.column_names
        # precomputed embeddings make text optional, but a text column named other than the
        # default was asked for: its absence is the user's typo, not a document without text
        named = self.options.text_column != ColumnOptions.text_column
        wanted = ([("--text-column", self.options.text_column)]
                  if self.needs_text or named else [])
        if self.options.id_column:
            wanted.append(("--id-column", self.options.id_column))
        if self.options.embedding_column:
            wanted.append(("--embedding-column", self.options.embedding_column))
        for flag, column in wanted:
            if column not in names:
                raise HashIndexError(
                    f"{self.path}: the input has no column {column!r} for {flag}; its "
                    f"columns are: {', '.join(names) or '(none)'}"
                )

    def metadata_columns(self, table: pa.Table) -> list[str]:
        used = {self.options.text_column, self.options.id_column, self.options.embedding_column}
        return [c for c in table.column_names if c not in used]

    def batches(self, batch_rows: int) -> Iterator[DocumentBatch]:
        first_row = 1
        for table in self.reader.batches(batch_rows):
            if table.num_rows == 0:
                continue
            if first_row == 1:
                self.resolve_id_column(table)
            self.check_columns(table)
            yield self.to_documents(table, first_row)
            first_row += table.num_rows

    def to_documents(self, table: pa.Table, first_row: int) -> DocumentBatch:
        row_numbers = np.arange(first_row, first_row + table.num_rows)
        if self.options.text_column in table.column_names:
            text = table.column(self.options.text_column).cast(pa.string())
        else:  # precomputed embeddings without text
            text = pa.nulls(table.num_rows, pa.string())
        empty = np.asarray(pc.fill_null(pc.equal(pc.utf8_trim_whitespace(text), ""), True))
        if not self.needs_text:
            empty[:] = False  # the embedding is the document; its text is only shown
        keep = ~empty
        if empty.any() and not self.options.skip_empty:
            raise HashIndexError(
                f"{self.path}: null or empty text in data row(s) {name_rows(row_numbers[empty])} "
                f"(counting from 1); fix them or pass --skip-empty to drop them"
            )
        if self.options.id_column:
            id_values = table.column(self.options.id_column)
            null_ids = np.asarray(id_values.is_null())
            if null_ids.any():
                raise HashIndexError(
                    f"{self.path}: null id in --id-column {self.options.id_column!r} at data "
                    f"row(s) {name_rows(row_numbers[null_ids])} (counting from 1)"
                )
            id_strings = id_values.cast(pa.string())
            blank = np.asarray(pc.equal(pc.utf8_trim_whitespace(id_strings), ""))
            if blank.any():
                raise HashIndexError(
                    f"{self.path}: empty id in --id-column {self.options.id_column!r} at data "
                    f"row(s) {name_rows(row_numbers[blank])} (counting from 1); give every "
                    "document an id"
                )
            ids = id_strings.to_pylist()
        else:
            ids = [str(r) for r in row_numbers]
        embeddings = None
        if self.options.embedding_column:
            embeddings = self.embedding_matrix(table.column(self.options.embedding_column),
                                               row_numbers)
        metadata = table.select(self.metadata_columns(table))
        for name in metadata.column_names:
            if name in RESERVED_COLUMNS:
                metadata = metadata.rename_columns(
                    [f"meta_{c}" if c == name else c for c in metadata.column_names]
                )
        if not keep.all():
            mask = pa.array(keep)
            metadata = metadata.filter(mask)
            ids = [i for i, k in zip(ids, keep) if k]
            text = text.filter(mask)
            embeddings = embeddings[keep] if embeddings is not None else None
        return DocumentBatch(
            ids=ids,
            texts=text.to_pylist(),
            metadata=metadata,
            embeddings=embeddings,
            skipped=int((~keep).sum()),
        )

    def embedding_matrix(self, column: pa.ChunkedArray, row_numbers: np.ndarray) -> np.ndarray:
        flag = f"--embedding-column {self.options.embedding_column!r}"
        if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)
                or pa.types.is_fixed_size_list(column.type)):
            raise HashIndexError(
                f"{self.path}: {flag} holds {column.type}, not lists of numbers"
            )
        nulls = np.asarray(column.is_null())
        if nulls.any():
            raise HashIndexError(
                f"{self.path}: {flag} is null at data row(s) {name_rows(row_numbers[nulls])}"
            )
        lengths = np.asarray(pc.list_value_length(column))
        empty = lengths == 0
        if empty.any():
            raise HashIndexError(
                f"{self.path}: {flag} holds an empty list at data row(s) "
                f"{name_rows(row_numbers[empty])}; give every row its embedding's numbers"
            )
        dim = self.embedding_dim or int(lengths[0])
        wrong = lengths != dim
        if wrong.any():
            raise HashIndexError(
                f"{self.path}: {flag} has dimension {int(lengths[wrong][0])} at data row "
                f"{int(row_numbers[wrong][0])}, expected {dim} like the first row"
            )
        self.embedding_dim = dim
        values = pc.list_flatten(column).to_numpy(zero_copy_only=False)
        matrix = np.asarray(values, dtype=np.float32).reshape(len(lengths), dim)
        finite = np.isfinite(matrix).all(axis=1)
        if not finite.all():
            raise HashIndexError(
                f"{self.path}: {flag} has NaN or inf at data row(s) "
                f"{name_rows(row_numbers[~finite])}; fix or drop those rows"
            )
        norms = vector_norms(matrix)
        zero = norms == 0
        if zero.any():
            raise HashIndexError(
                f"{self.path}: {flag} is all zeros at data row(s) {name_rows(row_numbers[zero])}: "
                "such a vector has no direction to compare by cosine; fix or drop those rows"
            )
        return unit_length(matrix, norms)  # scores are cosines, whatever the input's scale
