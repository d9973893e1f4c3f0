"""Benchmark scripts, each run as `python -m benchmarks.NAME`; the argument types they share."""

from __future__ import annotations

import argparse


def bits_argument(text: str) -> int:
    """An argparse type: a code length the engine takes, else argparse's one-line error (exit
    2) naming what is allowed, before any work starts."""
    from hashindex.codes import check_bits
    from hashindex.errors import HashIndexError

    try:
        return check_bits(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"bits must be an integer, got {text!r}") from None
    except HashIndexError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
