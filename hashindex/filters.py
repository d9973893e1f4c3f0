"""Metadata filters: which rows a search may return, as one boolean mask over the index.

A filter is a dict of column → condition, all of which must hold:
  {"lang": "en"}                    equality
  {"lang": ["en", "de"]}            one of
  {"year": {"gte": 2010, "lt": 2020}}  a range (gt, gte, lt, lte; any subset)
Values are cast to the column's type, so "2010" matches an integer column and 2010 a string
one; a value that cannot be cast is the user's error, named. Missing values never match.
The command line's `--filter` clauses (`lang=en`, `year>=2010`; `--where` is their old name)
parse to the same dict.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hashindex.errors import HashIndexError

RANGE_OPERATORS = {"gt": pc.greater, "gte": pc.greater_equal, "lt": pc.less,
                   "lte": pc.less_equal}
WHERE_OPERATORS = {">=": "gte", "<=": "lte", ">": "gt", "<": "lt", "=": "eq"}
_WHERE = re.compile(r"^\s*([^<>=!]+?)\s*(>=|<=|>|<|=)\s*(.*)$", re.S)


@dataclass(frozen=True)
class Condition:
    column: str
    one_of: tuple | None = None  # equality (one value) or one-of
    bounds: tuple = ()  # ((operator, value), ...) for a range


@dataclass(frozen=True)
class MetadataFilter:
    """A parsed filter; hashable, so a service can keep the masks of recent filters."""

    conditions: tuple[Condition, ...]

    def mask(self, column: Callable[[str], pa.ChunkedArray]) -> np.ndarray:
        """bool[rows]: the rows every condition admits; `column(name)` gives a column's values
        in row order."""
        result = None
        for condition in self.conditions:
            values = column(condition.column)
            admitted = condition_mask(condition, values)
            result = admitted if result is None else result & admitted
        return result


def parse_filter(spec, columns: dict[str, pa.DataType]) -> MetadataFilter | None:
    """A filter dict checked against the index's columns (name → arrow type); None if empty."""
    if spec is None or spec == {}:
        return None
    if not isinstance(spec, dict):
        raise HashIndexError(f"filter must be an object of column: condition, got {spec!r}")
    conditions = []
    for name, condition in spec.items():
        if name not in columns:
            raise HashIndexError(f"filter: no metadata column {name!r}; this index has "
                                 f"{', '.join(columns) or 'none'}")
        kind = columns[name]
        if not (pa.types.is_primitive(kind) or pa.types.is_string(kind)
                or pa.types.is_large_string(kind)):
            raise HashIndexError(f"filter.{name}: column of type {kind} cannot be filtered; "
                                 "filter on string, number, boolean or date columns")
        if isinstance(condition, dict):
            unknown = sorted(set(condition) - set(RANGE_OPERATORS))
            if unknown or not condition:
                raise HashIndexError(f"filter.{name}: a range takes gt, gte, lt, lte"
                                     + (f"; got {', '.join(unknown)}" if unknown else ""))
            bounds = tuple((op, cast_value(name, condition[op], kind))
                           for op in sorted(condition))
            conditions.append(Condition(name, bounds=bounds))
        else:
            values = condition if isinstance(condition, list) else [condition]
            if not values:
                raise HashIndexError(f"filter.{name}: an empty list admits nothing; give at "
                                     "least one value")
            conditions.append(Condition(name, one_of=tuple(cast_value(name, v, kind)
                                                           for v in values)))
    return MetadataFilter(tuple(conditions))


def cast_value(column: str, value, kind: pa.DataType):
    """The value as the column's type (a Python scalar), or a one-line error naming it."""
    if value is None or isinstance(value, (dict, list)):
        raise HashIndexError(f"filter.{column}: {value!r} is not a value to compare with")
    if isinstance(value, bool) != pa.types.is_boolean(kind):  # arrow casts True to 1 and back
        raise HashIndexError(f"filter.{column}: {value!r} is not a {kind} (the column's type)")
    if isinstance(value, int) and not isinstance(value, bool):
        if pa.types.is_floating(kind):
            value = float(value)  # any integer is a number to compare with
        elif pa.types.is_integer(kind):  # made as the column's type: uint64's 2**63 fits
            try:
                return pa.array([value], type=kind).to_pylist()[0]
            except (OverflowError, pa.ArrowInvalid):  # 2**70 was an internal OverflowError
                raise HashIndexError(f"filter.{column}: {value} does not fit the column's "
                                     f"type {kind}") from None
    try:
        return pa.array([value]).cast(kind).to_pylist()[0]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, OverflowError):
        raise HashIndexError(f"filter.{column}: {value!r} is not a {kind} (the column's "
                             "type)") from None


def condition_mask(condition: Condition, values: pa.ChunkedArray) -> np.ndarray:
    if condition.one_of is not None:
        admitted = pc.is_in(values, value_set=pa.array(condition.one_of, type=values.type))
    else:
        admitted = None
        for op, bound in condition.bounds:
            part = RANGE_OPERATORS[op](values, pa.scalar(bound, type=values.type))
            admitted = part if admitted is None else pc.and_(admitted, part)
    return np.asarray(pc.fill_null(admitted, False).to_numpy(zero_copy_only=False),
                      dtype=bool)


def parse_where(clauses: list[str] | tuple[str, ...], flag: str = "--where") -> dict:
    """The command line's filter clauses → a filter dict: COL=VALUE (repeat a column for
    one-of), COL>=V, COL<=V, COL>V, COL<V. A value is read as JSON when it parses (numbers,
    true), else as a string. Errors name `flag`, the option the clauses came with."""
    spec: dict = {}
    for clause in clauses:
        match = _WHERE.match(clause)
        if not match or not match.group(3).strip():
            raise HashIndexError(f"{flag} {clause!r}: write COL=VALUE, COL>=VALUE, "
                                 "COL<=VALUE, COL>VALUE or COL<VALUE")
        column, operator, text = match.group(1), WHERE_OPERATORS[match.group(2)], match.group(3)
        if text.strip()[0] in "<>=!":  # `year>>2`, `year==2`, `year=>2`: a mistyped operator
            raise HashIndexError(f"{flag} {clause!r}: the value {text.strip()!r} starts with "
                                 "an operator; write one of =, >=, <=, >, <, and put a value "
                                 f"that starts with one in JSON quotes ('\"{text.strip()}\"')")
        value = where_value(text.strip())
        if operator == "eq":
            if isinstance(spec.get(column), dict):
                raise HashIndexError(f"{flag} {clause!r}: {column} already has a range")
            spec.setdefault(column, [])
            spec[column].append(value)
        else:
            if isinstance(spec.get(column), list):
                raise HashIndexError(f"{flag} {clause!r}: {column} already has =")
            spec.setdefault(column, {})[operator] = value
    return spec


def where_value(text: str):
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value if isinstance(value, (int, float, bool, str)) else text
