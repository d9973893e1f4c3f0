"""Options as frozen dataclass fields that carry their help, range and choices.

Variants (models/options.py), backends (backends/options.py) and training each declare their
options this way, so one function checks any of them, one parses `KEY=VALUE` strings into
them, and `hashindex variants --options` can print them: an option a thing does not have,
or a value outside its range, is a one-line error naming it and what is allowed.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from hashindex.errors import HashIndexError


def option(default, help: str = "", low: float | None = None, high: float | None = None,
           low_open: bool = False, choices: tuple[str, ...] | None = None):
    """A field with its help and allowed values: low ≤ value ≤ high (low < value when
    low_open; every element when the value is a tuple), or one of `choices`."""
    return field(default=default, metadata={"help": help, "low": low, "high": high,
                                            "low_open": low_open, "choices": choices})


@dataclass(frozen=True)
class Options:
    """Base of every options dataclass: checked on construction, a dict in and out."""

    def __post_init__(self):
        check_options(self)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, data: dict, owner: str = "") -> Options:
        unknown = sorted(set(data) - set(cls.names()))
        if unknown:
            raise HashIndexError(f"{owner or cls.__name__} has no option(s) {', '.join(unknown)}; "
                                 f"its options are: {', '.join(cls.names()) or '(none)'}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)


def check_options(options) -> None:
    """Raise naming the first field outside its range or choices, and what is allowed."""
    for item in fields(options):
        meta = item.metadata
        value = getattr(options, item.name)
        choices = meta.get("choices")
        if choices is not None and value not in choices:
            raise HashIndexError(f"option {item.name}={value!r} is unknown: choose one of "
                                 f"{', '.join(choices)}")
        low, high = meta.get("low"), meta.get("high")
        if low is None and high is None:
            continue
        for v in value if isinstance(value, tuple) else (value,):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise HashIndexError(f"option {item.name}={v!r} is not a number: "
                                     f"{describe_range(item)}")
            below = low is not None and (v <= low if meta.get("low_open") else v < low)
            above = high is not None and v > high
            if below or above or (isinstance(v, float) and not math.isfinite(v)):
                shown = ",".join(map(str, value)) if isinstance(value, tuple) else value
                raise HashIndexError(f"option {item.name}={shown} is out of range: "
                                     f"{describe_range(item)}")


def describe_range(item) -> str:
    meta = item.metadata
    low, high = meta.get("low"), meta.get("high")
    what = "each value" if isinstance(item.default, tuple) else "it"
    if low is not None and high is not None:
        return f"{what} must be from {low} to {high}"
    if low is not None:
        return f"{what} must be {'above' if meta.get('low_open') else 'at least'} {low}"
    return f"{what} must be at most {high}"


def describe_option(item) -> str:
    """`name = default  help [range or choices]` for listings."""
    default = item.default if item.default is not MISSING else None
    shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
    meta = item.metadata
    allowed = ""
    if meta.get("choices"):
        allowed = f" [{' | '.join(meta['choices'])}]"
    elif meta.get("low") is not None or meta.get("high") is not None:
        shown_range = describe_range(item).split(" must be ", 1)[1]
        allowed = f" [{'each ' if isinstance(default, tuple) else ''}{shown_range}]"
    return f"{item.name} = {shown}  {meta.get('help', '')}{allowed}"


def parse_value(item, raw: str) -> Any:
    """A `KEY=VALUE` string's value as the field's type (taken from its default)."""
    default = item.default
    if isinstance(default, tuple):
        return tuple(int(w) for w in raw.split(",") if w.strip())
    if isinstance(default, bool):
        if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
            raise ValueError(raw)
        return raw.lower() in ("1", "true", "yes")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


def parse_pairs(classes, pairs: list[str], flag: str, owner: str,
                reserved: dict[str, str] | None = None) -> dict:
    """`KEY=VALUE` strings → {field: typed value} of the Options class(es) `classes`.

    `owner` names what has the options ("variant vanilla") for the messages, `reserved` maps
    keys that are set elsewhere to where (e.g. bits → "pass --bits")."""
    classes = classes if isinstance(classes, tuple) else (classes,)
    by_name = {f.name: f for cls in classes for f in fields(cls)}
    out = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if reserved and key in reserved:
            raise HashIndexError(f"{flag} {pair!r}: {key} is not an option; {reserved[key]}")
        if not sep:
            raise HashIndexError(f"{flag} {pair!r} is not KEY=VALUE")
        if key not in by_name:
            known = ", ".join(by_name) or "(none)"
            raise HashIndexError(f"{flag} {pair!r}: {owner} has no option {key!r}; its options "
                                 f"are: {known}")
        try:
            out[key] = parse_value(by_name[key], raw.strip())
        except ValueError:
            kind = type(by_name[key].default).__name__
            raise HashIndexError(f"{flag} {pair!r}: {raw!r} is not a valid {kind}") from None
    return out
