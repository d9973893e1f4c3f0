"""manifest.json: what an index holds and how it was made, with a sha256 for every file and
one of its own (`manifest_sha256`, over the rest of it), so that an edited or damaged manifest
is caught at open instead of deep inside a query.

One manifest is one generation: the segments live at that moment, each with its deleted rows,
and every file they use. A commit writes a new one beside it and renames it over the old
(generations.py), so a reader sees one generation whole or the one before.

A reader checks the format version, the manifest's own checksum and the files' sizes before
trusting anything else; `verify` also re-hashes every file.
"""

from __future__ import annotations

import hashlib
import json
import stat
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from hashindex.errors import HashIndexError
from hashindex.store.fsutil import write_new_file
from hashindex.store.layout import MANIFEST_FILE
from hashindex.store.paths import check_index_paths, check_no_links, link_error
from hashindex.version import __version__
from hashindex.versioned_json import read_versioned_json

# 2: the table keeps one sorted key per document, no offsets; 3: the manifest's own checksum;
# 4: segments, deletions and generations
FORMAT_VERSION = 4
LEGACY_FORMAT = 3  # one build at the top level: opens read-only until `hashindex upgrade`
SELF_CHECKSUM = "manifest_sha256"


@dataclass
class Segment:
    """One immutable segment: its folder (relative to the index; "" for a format-3 index),
    its shards in row order, and which of its rows are deleted (a file per generation)."""

    name: str
    folder: str
    rows: int
    shards: list[dict]  # {"file": path relative to the index, "rows": count}
    origin: str = "build"  # build, add or compact
    # its first rows are the build's documents (the encoder was trained on them, or a reused
    # --encoder encoded them at build time): what drift is measured against
    trained_rows: int = 0
    deleted: int = 0
    deletions: str | None = None  # the file of deleted rows, None when none are
    generation: int = 1  # the generation that wrote it

    @property
    def live(self) -> int:
        return self.rows - self.deleted

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Segment:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass
class IndexManifest:
    """Every key manifest.json holds: written by the build and each commit, read by the engine
    and `info`. `documents` counts live documents, `rows` every row of every segment."""

    documents: int
    bits: int
    variant: str
    embedding_model: str  # sentence-transformers name, or PRECOMPUTED_MODEL
    dimension: int
    backend: str  # the FAISS backend built beside the table
    segments: list[Segment]
    generation: int = 1
    next_segment: int = 2  # the number the next segment takes
    metadata_columns: list[str] = field(default_factory=list)
    embedding: dict = field(default_factory=dict)  # how texts were embedded (EmbeddingSpec)
    store_embeddings: bool = False  # vectors/ holds them, for re-ranking
    vector_dtype: str | None = None  # int8 (with a scale per row) or float16
    backend_options: dict = field(default_factory=dict)  # the backend's knobs (the defaults)
    distinct_codes: int = 0
    skipped_empty: int = 0
    model: dict = field(default_factory=dict)  # ModelConfig.to_dict()
    train: dict | None = None  # TrainConfig, None when an --encoder was reused
    build: dict = field(default_factory=dict)  # how the build was asked for
    stage_seconds: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)  # of the libraries that made it
    created: str = ""
    hashindex_version: str = __version__
    files: dict = field(default_factory=dict)  # {relative path: {"sha256", "bytes"}}
    history: list[dict] = field(default_factory=list)  # one line per commit after the build
    tuning: dict | None = None  # the recall/speed sweep the build ran (hashindex/tuning.py)
    format_version: int = FORMAT_VERSION

    @property
    def rows(self) -> int:
        return sum(segment.rows for segment in self.segments)

    @property
    def shards(self) -> list[dict]:
        """Every segment's shards, in global row order."""
        return [shard for segment in self.segments for shard in segment.shards]

    @property
    def legacy(self) -> bool:
        return self.format_version == LEGACY_FORMAT

    def to_dict(self) -> dict:
        data = asdict(self)
        data["embedding_model"] = {"name": self.embedding_model, "dimension": self.dimension,
                                   **self.embedding}
        del data["dimension"], data["embedding"]
        return data

    @classmethod
    def from_dict(cls, data: dict, path: Path) -> IndexManifest:
        data = {k: v for k, v in data.items() if k != SELF_CHECKSUM}
        try:
            model = data.pop("embedding_model")
            if data["format_version"] == LEGACY_FORMAT:  # its one build is one segment
                data["segments"] = [{"name": "build", "folder": "", "rows": data["documents"],
                                     "shards": data.pop("shards"),
                                     "trained_rows": data["documents"] if data.get("train")
                                     else 0}]
            values = {**data, "embedding_model": model["name"], "dimension": model["dimension"],
                      "embedding": {k: v for k, v in model.items()
                                    if k not in ("name", "dimension")},
                      "segments": [Segment.from_dict(s) for s in data["segments"]]}
            return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})
        except (KeyError, TypeError) as error:
            raise HashIndexError(f"{path} lacks {error} or has it in the wrong shape; rebuild "
                                 "the index") from None


def sha256_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def file_checksums(root: Path, under: str = "") -> dict[str, dict]:
    """{relative path: {sha256, bytes}} for every file under root (or under its folder
    `under`) except the manifest."""
    out = {}
    for path in sorted(p for p in (root / under).rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        if relative != MANIFEST_FILE:
            out[relative] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    return out


def manifest_bytes(manifest: IndexManifest) -> bytes:
    """The manifest as written: JSON with its own checksum."""
    manifest.format_version = FORMAT_VERSION
    data = manifest.to_dict()
    data[SELF_CHECKSUM] = own_checksum(data)
    return (json.dumps(data, indent=2, sort_keys=False) + "\n").encode()


def own_checksum(manifest: dict) -> str:
    """sha256 of the manifest without its own checksum, in a canonical JSON form."""
    rest = {key: value for key, value in manifest.items() if key != SELF_CHECKSUM}
    return hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()


def write_manifest(root: Path, manifest: IndexManifest) -> Path:
    """A new index's manifest, generation 1, in a build's staging folder: every file's
    checksum and size, then the manifest with its own checksum, in a file made here. The
    folder is then committed whole as every on-disk change is (fsutil.publish, through
    publish.Staging); commits to a live index go through generations.commit."""
    manifest.files = file_checksums(root)
    path = root / MANIFEST_FILE
    write_new_file(path, manifest_bytes(manifest))
    return path


def manifest_identity(root: Path) -> str | None:
    """The sha256 of manifest.json's bytes: every build and commit writes a new one (its
    generation and checksums differ), so a reader that sees the same identity before and after
    opening its files opened one generation. (Not the inode: a rename over the file lets the
    file system hand the old inode number to the next commit's manifest.)"""
    try:
        return hashlib.sha256((Path(root) / MANIFEST_FILE).read_bytes()).hexdigest()
    except OSError:
        return None


def index_manifest_file(root: Path) -> Path:
    """The manifest file of the index at `root` (not read), or the error saying there is no
    index there: what a writer checks before it makes its lock file in the folder."""
    root = Path(root)
    if not root.exists():
        raise HashIndexError(f"index {root} does not exist; build it with `hashindex build`")
    path = root / MANIFEST_FILE
    if path.is_symlink():
        raise link_error(path)
    if not path.is_file():
        raise HashIndexError(f"{root} is not a hashindex index: {MANIFEST_FILE} is missing")
    return path


def read_manifest(root: Path, verify: bool = False) -> IndexManifest:
    """Load and check the manifest: its checksum, that every path it names is inside the index
    and reached without a link, and every file's size; `verify` also re-hashes every file."""
    root = Path(root)
    path = index_manifest_file(root)
    data = read_versioned_json(path, "index", (FORMAT_VERSION, LEGACY_FORMAT),
                               "rebuild the index")
    if data.get(SELF_CHECKSUM) != own_checksum(data):
        raise HashIndexError(
            f"{path} was edited or damaged (its own checksum does not match its content); "
            "rebuild the index"
        )
    manifest = IndexManifest.from_dict(data, path)
    check_index_paths(root, manifest, str(path))
    checked: set[str] = set()
    for relative, expected in manifest.files.items():
        if not (isinstance(expected, dict) and type(expected.get("bytes")) is int
                and isinstance(expected.get("sha256"), str)):
            raise HashIndexError(f"{path} lacks the size or checksum of {relative}; rebuild "
                                 "the index")
        file_path = root / relative
        found = check_no_links(root, relative, checked)
        if not stat.S_ISREG(found.st_mode):
            raise HashIndexError(f"index file {file_path} is not a regular file; rebuild the "
                                 "index")
        if found.st_size != expected["bytes"]:
            raise HashIndexError(
                f"index file {file_path} is truncated or changed ({found.st_size} "
                f"bytes, manifest says {expected['bytes']}); rebuild the index"
            )
        if verify and sha256_file(file_path) != expected["sha256"]:
            raise HashIndexError(
                f"index file {file_path} is corrupted (sha256 differs from the manifest); "
                "rebuild the index"
            )
    return manifest
