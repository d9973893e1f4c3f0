"""Reading the JSON files that describe what we wrote (manifest.json, a model's config.json):
each carries a format_version, and an unreadable or foreign one is a one-line error."""

from __future__ import annotations

import json
from pathlib import Path

from hashindex.errors import HashIndexError


def read_versioned_json(path: Path, kind: str, version: int | tuple[int, ...],
                        remedy: str) -> dict:
    """The JSON object at `path` if its format_version is `version` (or one of them); else
    HashIndexError naming the file, the `kind` of format and the `remedy`."""
    versions = version if isinstance(version, tuple) else (version,)
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HashIndexError(f"{path} is corrupted (not valid JSON: {error}); {remedy}") from None
    found = data.get("format_version") if isinstance(data, dict) else None
    if found not in versions:
        raise HashIndexError(
            f"{path} has {kind} format version {found!r}; this hashindex reads version "
            f"{' or '.join(map(str, versions))}: {remedy}"
        )
    return data
