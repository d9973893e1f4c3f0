"""Checks on free text from the command line (a query, ids, --filter clauses).

A shell passes bytes; Python keeps those that are not UTF-8 as lone surrogates
(surrogateescape), which no text model, Arrow column or JSON answer can take. Paths may hold
such bytes, so only text arguments are checked.
"""

from __future__ import annotations

from hashindex.errors import HashIndexError

ESCAPED_BYTES = range(0xDC80, 0xDD00)  # where surrogateescape puts the bytes 0x80-0xff


def utf8_text(value: str | None, what: str) -> str | None:
    """The value unchanged, or a one-line error naming the argument and its first bad byte."""
    if value is None:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        point = ord(value[error.start])
        byte = (f"byte 0x{point - 0xDC00:02x}" if point in ESCAPED_BYTES
                else f"a lone surrogate U+{point:04X}")
        raise HashIndexError(f"{what} is not valid UTF-8 text ({byte} at character "
                             f"{error.start + 1}); pass it in UTF-8") from None
    return value


def utf8_texts(values, what: str) -> list[str]:
    return [utf8_text(value, what) for value in values]
