"""Atomic publication of a directory: build in `NAME.tmp-*`, rename into place when complete."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hashindex.errors import HashIndexError


def staging_directory(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{target.name}.tmp-", dir=target.parent))


def check_target(target: Path, overwrite: bool) -> None:
    if target.exists() and not overwrite:
        raise HashIndexError(f"{target} already exists; pass --overwrite to replace it")
    if target.exists() and not target.is_dir():
        raise HashIndexError(f"{target} exists and is not a directory; choose another --out")


def publish(staging: Path, target: Path, overwrite: bool) -> None:
    """Move the finished staging directory to `target`, replacing an old one if allowed.

    The old index is first renamed aside, so at every instant `target` is either the complete
    old index, absent for the instant between two renames, or the complete new one.
    """
    check_target(target, overwrite)
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f"{target.name}.old-", dir=target.parent))
        os.rmdir(old)
        os.replace(target, old)
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
