"""Progress bars meeting the one-line errors: an error starts on a line of its own."""

from __future__ import annotations

import sys


def end_progress_lines() -> None:
    """Close every progress bar still open (the error or Ctrl-C came mid-bar), each ending its
    line where it stopped. Left open, a bar's line runs into the `error:` line, and the bar,
    closed later by the garbage collector, prints once more after it."""
    std = sys.modules.get("tqdm.std")
    if std is None:  # no bar was ever made
        return
    for bar in list(getattr(std.tqdm, "_instances", ())):
        bar.leave = True  # a newline after it, even for a bar meant to vanish when done
        bar.close()
