"""An index's .npy files opened with the checks that cost (almost) nothing.

Opening checks each file's presence and size against the manifest (store/manifest.py); a
byte flipped inside a file passes that. What can be caught without reading every byte is
caught here, where each file is loaded: a header that parses, the dtype and shape its reader
expects, row ids within the row count (one pass over the ids). Anything subtler is
`hashindex verify`'s to find (it re-hashes every file), and the error says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hashindex.errors import HashIndexError

VERIFY_HINT = "run `hashindex verify` on the index, and rebuild it if that fails"


def damaged(path: Path, what: str) -> HashIndexError:
    return HashIndexError(f"index file {path} is damaged ({what}); {VERIFY_HINT}")


def load_array(path: Path, *, dtypes: tuple | None = None, ndim: int | None = None,
               rows: int | None = None, mmap: bool = True) -> np.ndarray:
    """np.load (memory-mapped unless `mmap` is False), or an error naming the file when its
    header does not parse or does not describe the array its reader expects: a dtype among
    `dtypes`, `ndim` dimensions, `rows` rows."""
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except OSError:
        raise  # missing or unreadable: the CLI names the path and the cause
    except Exception as error:  # a damaged header fails in many ways (ValueError, TokenError…)
        reason = " ".join(str(error).split())[:120] or type(error).__name__
        raise damaged(path, f"its array header cannot be read: {reason}") from None
    if dtypes is not None and array.dtype not in [np.dtype(d) for d in dtypes]:
        raise damaged(path, f"it holds {array.dtype}, not "
                            f"{' or '.join(str(np.dtype(d)) for d in dtypes)}")
    if ndim is not None and array.ndim != ndim:
        raise damaged(path, f"it holds a {array.ndim}-d array of shape {array.shape}, not "
                            f"{ndim}-d")
    if rows is not None and array.shape[0] != rows:
        raise damaged(path, f"it holds {array.shape[0]} rows, not the {rows} expected")
    return array


def check_row_ids(path: Path, ids: np.ndarray, count: int) -> None:
    """Every id in 0..count-1, or an error naming the file and the first id outside."""
    if not len(ids):
        return
    values = np.asarray(ids)
    low, high = int(values.min()), int(values.max())
    if low < 0 or high >= count:
        bad = low if low < 0 else high
        raise damaged(path, f"row id {bad} is outside 0..{count - 1}")
