"""manifest.json: what an index holds and how it was made, with a sha256 for every file and
one of its own (`manifest_sha256`, over the rest of it), so that an edited or damaged manifest
is caught at open instead of deep inside a query.

A reader checks the format version, the manifest's own checksum and the files' sizes before
trusting anything else; `verify` also re-hashes every file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hashindex.errors import HashIndexError
from hashindex.store.layout import MANIFEST_FILE
from hashindex.versioned_json import read_versioned_json

# 2: the table keeps one sorted key per document, no offsets; 3: the manifest's own checksum
FORMAT_VERSION = 3
SELF_CHECKSUM = "manifest_sha256"


def sha256_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def file_checksums(root: Path) -> dict[str, dict]:
    """{relative path: {sha256, bytes}} for every file under root except the manifest."""
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        if relative != MANIFEST_FILE:
            out[relative] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    return out


def own_checksum(manifest: dict) -> str:
    """sha256 of the manifest without its own checksum, in a canonical JSON form."""
    rest = {key: value for key, value in manifest.items() if key != SELF_CHECKSUM}
    return hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()


def write_manifest(root: Path, manifest: dict) -> Path:
    manifest = {**manifest, "format_version": FORMAT_VERSION, "files": file_checksums(root)}
    manifest[SELF_CHECKSUM] = own_checksum(manifest)
    path = root / MANIFEST_FILE
    path.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return path


def manifest_identity(root: Path) -> tuple[int, int] | None:
    """(device, inode) of the manifest file: a rebuild publishes a new one, so a reader that
    sees the same identity before and after opening its files opened one build."""
    try:
        info = (Path(root) / MANIFEST_FILE).stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


def read_manifest(root: Path, verify: bool = True) -> dict:
    """Load and check the manifest; `verify` also re-hashes every file it lists."""
    root = Path(root)
    if not root.exists():
        raise HashIndexError(f"index {root} does not exist; build it with `hashindex build`")
    path = root / MANIFEST_FILE
    if not path.is_file():
        raise HashIndexError(f"{root} is not a hashindex index: {MANIFEST_FILE} is missing")
    manifest = read_versioned_json(path, "index", FORMAT_VERSION, "rebuild the index")
    if manifest.get(SELF_CHECKSUM) != own_checksum(manifest):
        raise HashIndexError(
            f"{path} was edited or damaged (its own checksum does not match its content); "
            "rebuild the index"
        )
    for relative, expected in manifest.get("files", {}).items():
        file_path = root / relative
        if not file_path.is_file():
            raise HashIndexError(f"index file {file_path} is missing; rebuild the index")
        if file_path.stat().st_size != expected["bytes"]:
            raise HashIndexError(
                f"index file {file_path} is truncated or changed ({file_path.stat().st_size} "
                f"bytes, manifest says {expected['bytes']}); rebuild the index"
            )
        if verify and sha256_file(file_path) != expected["sha256"]:
            raise HashIndexError(
                f"index file {file_path} is corrupted (sha256 differs from the manifest); "
                "rebuild the index"
            )
    return manifest
