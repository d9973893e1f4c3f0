"""The ray engine: the build's passes on Ray Data, for inputs that one machine embeds too slowly.

1. Plan (driver): the input's reader cuts it into parts of about `batch_rows` rows (Parquet
   by row groups, JSONL by byte ranges at line ends: readers/), each part knowing its first row
   and line, so every error names the file and row as the local build's do.
2. Embed (Ray Data, an actor pool of `--embed-workers` actors, one CPU each, each loading the
   text model once): each part is read, validated and embedded, and its vectors, ids and row
   count are written to a resume folder beside the cache (written whole, then renamed). A build
   that fails or is interrupted resumes there: parts already written are not embedded again.
3. Train (driver): the sample is chosen by row with the local engine's rule and seed
   (passes.sample_rows) from the parts' vectors in input order, so both engines train on the
   same rows and make the same encoder.
4. Encode and write (Ray Data tasks): each part re-read, encoded with the trained encoder and
   written as its own shard, under a temporary name then renamed; a retried task rewrites it.
5. Index (driver): the table and second backend over the codes in part order, the vectors, the
   manifest; published atomically like a local build (store/publish.py).

Every document lands exactly once because every output is named by its part and written whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from hashindex.embedding.cache import default_cache_dir
from hashindex.errors import HashIndexError
from hashindex.faults import fault_point
from hashindex.segments.adding import UniqueIds
from hashindex.segments.writing import SegmentWriter
from hashindex.store.layout import SHARDS_DIR, segment_folder
from hashindex.store.shard_writer import ShardWriter
from indexer.build.config import BuildConfig
from indexer.build.passes import ID_HINT, unify_metadata
from indexer.build.skeleton import BuildRun, Engine, Written, segment_settings
from indexer.documents import DocumentStream
from indexer.readers import Part

RESUME_DIR = "ray-parts"  # under the cache dir: each build's parts, by input and settings
INIT_SECONDS = 5.0  # how long an address may take to answer before it is called unreachable


def plan_parts(reader, part_rows: int) -> list[Part]:
    """The input cut into parts of about part_rows rows, by its reader."""
    parts = reader.parts(part_rows)
    if parts is None:
        raise HashIndexError(f"{reader.path}: the ray engine reads Parquet and JSONL; convert "
                             "the input, or build it with --engine local")
    return parts


def part_documents(stream: DocumentStream, part: Part):
    """The part's validated documents (errors name the input's rows, as a local build's)."""
    try:
        table = stream.reader.read_part(part)
    except OSError as error:
        reason = error.strerror or str(error)
        raise HashIndexError(f"the Ray workers cannot read {stream.path} ({reason}); put the "
                             "input where every node can read it") from None
    if table.num_rows == 0:
        return None
    stream.check_columns(table)
    return stream.to_documents(table, part.first_row)


class EmbedParts:
    """A Ray Data actor: loads the text model once, then embeds whole parts into the resume
    folder (vectors, ids, counts), skipping parts already there."""

    def __init__(self, stream: DocumentStream, embedder, folder: str):
        self.stream, self.folder = stream, Path(folder)
        if isinstance(embedder, dict):  # the settings of an Embedder: loaded here, once
            from hashindex.embedding.embedder import Embedder

            embedder = Embedder(**embedder)
        self.embedder = embedder

    def __call__(self, batch: dict) -> dict:
        out = {"part": [], "embedded": [], "rows": []}
        for number, spec in zip(batch["part"], batch["spec"]):
            embedded, rows = self.embed(Part(**json.loads(spec)))
            out["part"].append(number)
            out["embedded"].append(embedded)
            out["rows"].append(rows)
        return out

    def embed(self, part: Part) -> tuple[int, int]:
        """(texts embedded now, documents in the part)."""
        done = self.folder / f"part-{part.number:05d}.json"
        if done.exists():
            return 0, json.loads(done.read_text())["rows"]
        documents = part_documents(self.stream, part)
        embedded = 0
        if documents is None or not documents.ids:
            vectors = np.zeros((0, 0), np.float32)
            ids, skipped, schema = [], documents.skipped if documents else 0, pa.schema([])
        else:
            if documents.embeddings is not None:
                vectors = documents.embeddings
            else:
                vectors = np.asarray(self.embedder.embed(documents.texts), dtype=np.float32)
                embedded = len(vectors)
            ids, skipped, schema = documents.ids, documents.skipped, documents.metadata.schema
        fault_point("ray-embed")
        temporary = self.folder / f".part-{part.number:05d}-{uuid.uuid4().hex}"
        np.save(f"{temporary}.npy", vectors)
        os.replace(f"{temporary}.npy", self.folder / f"part-{part.number:05d}.npy")
        record = {"rows": len(ids), "skipped": skipped, "ids": ids,
                  "schema": schema.serialize().to_pybytes().hex()}
        Path(f"{temporary}.json").write_text(json.dumps(record))
        os.replace(f"{temporary}.json", done)  # last: the part counts as done only now
        return embedded, len(ids)


def encode_and_write(batch: dict, *, stream, encoder, root: str, folder: str,
                     metadata: pa.Schema, code_bytes: int, vectors_folder: str) -> dict:
    """A Ray Data task: re-read each part, encode its vectors, write it as its own shard
    (a temporary name, then renamed: a retried task rewrites it whole)."""
    out = {"part": [], "rows": [], "codes": []}
    for number, spec in zip(batch["part"], batch["spec"]):
        part = Part(**json.loads(spec))
        documents = part_documents(stream, part)
        vectors = np.load(Path(vectors_folder) / f"part-{part.number:05d}.npy")
        rows = len(documents.ids) if documents is not None else 0
        codes = encoder.encode(vectors) if rows else np.zeros((0, code_bytes), np.uint8)
        if rows:
            scratch = f"{folder}/_tmp-{part.number:05d}-{uuid.uuid4().hex}"
            writer = ShardWriter(Path(root), metadata, code_bytes, rows + 1, folder=scratch,
                                 first_number=part.number)
            writer.write(documents.ids, documents.texts, documents.metadata, codes)
            (written,) = writer.close()
            final = Path(root) / folder / SHARDS_DIR / Path(written["file"]).name
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(Path(root) / written["file"], final)
            shutil.rmtree(Path(root) / scratch, ignore_errors=True)
        out["part"].append(number)
        out["rows"].append(rows)
        out["codes"].append(codes.tobytes())
    return out


def connect(config: BuildConfig):
    """Join --ray-address, or the Ray this process already runs, or start a local one. Ray
    Data's own bars and logs are off: the build shows its bars, and a failure is one line."""
    import logging

    import ray

    logging.getLogger("ray").setLevel(logging.CRITICAL)
    if ray.is_initialized():
        quiet_data(ray)
        return ray
    address = config.ray_address
    if address and not address.startswith("ray://") and address != "auto":
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), INIT_SECONDS).close()
        except (OSError, ValueError):
            raise HashIndexError(f"--ray-address {address}: no Ray cluster answers there; "
                                 "start one (ray start --head) or fix the address") from None
    try:
        ray.init(address=address or None, include_dashboard=False, log_to_driver=False,
                 configure_logging=False, num_cpus=None if address else os.cpu_count())
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise HashIndexError(f"--ray-address {address}: cannot join the Ray cluster "
                             f"({str(error).splitlines()[0]})") from None
    quiet_data(ray)
    return ray


def quiet_data(ray) -> None:
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False


def resume_folder(config: BuildConfig, source: Path, embedder_name: str) -> Path:
    """Where this input's parts are embedded: keyed by the input file (path, size, time), the
    text model with its runtime, quantization and calibration (`embedder_name`: the embedding
    cache's key), where texts are cut, and how the input is read, so a changed input or
    setting starts afresh."""
    info = source.stat()
    key = json.dumps([str(source), info.st_size, info.st_mtime_ns, embedder_name,
                      config.embed_backend, config.quantization, config.max_tokens,
                      config.to_dict()["columns"], config.batch_rows], sort_keys=True)
    root = Path(config.cache_dir) if config.cache_dir else default_cache_dir()
    return root / RESUME_DIR / hashlib.sha256(key.encode()).hexdigest()[:16]


def ray_errors(error: Exception) -> HashIndexError | None:
    """A worker's failure as the one-line error it stands for (None: not one we know)."""
    text = str(error)
    for line in text.splitlines():
        if "HashIndexError:" in line:
            return HashIndexError(line.split("HashIndexError:", 1)[1].strip())
        missing = re.search(r"No module named '([^']+)'", line)
        if missing:
            module = missing.group(1)
            what = ("hashindex" if module.split(".")[0] in ("hashindex", "indexer")
                    else f"{module} (a dependency of hashindex)")
            return HashIndexError(f"the Ray workers cannot import {what}; install it on every "
                                  "node (pip install 'hashindex[ray]') or run from a shared "
                                  "environment")
    return None


class RayEngine(Engine):
    """The ray engine's passes (see the module docstring): the same index a local build
    makes, trained by the skeleton's own step."""

    name = "ray"
    reads_tokens = False

    def open(self, config: BuildConfig) -> None:
        self.ray = connect(config)

    def plan(self, stream: DocumentStream, config: BuildConfig) -> None:
        self.parts = plan_parts(stream.reader, config.batch_rows)
        self.specs = [{"part": p.number, "spec": json.dumps(p.__dict__)} for p in self.parts]
        first = stream.reader.read_part(self.parts[0]) if self.parts else pa.table({})
        if first.num_rows:
            stream.resolve_id_column(first)
            stream.check_columns(first)

    def embed(self, run: BuildRun, scratch: Path) -> tuple[np.ndarray, pa.Schema]:
        config, report, parts, source = run.config, run.report, self.parts, run.source
        self.folder = folder = resume_folder(
            config, source, getattr(run.embedder, "cache_name", run.model_name))
        folder.mkdir(parents=True, exist_ok=True)
        workers = config.embed_workers
        threads = config.embed_threads or max(1, (os.cpu_count() or 1) // workers)
        embedder = run.embedder
        shipped = (embedder.worker_settings(threads=threads)
                   if hasattr(embedder, "worker_settings") else embedder)
        started = time.perf_counter()
        embedded = run_stage(
            self.ray.data.from_items(self.specs).map_batches(
                EmbedParts, fn_constructor_kwargs={"stream": run.stream, "embedder": shipped,
                                                   "folder": str(folder)},
                batch_size=1, num_cpus=1, compute=self.ray.data.ActorPoolStrategy(size=workers)),
            "embed", config.show_progress)
        report.embedded = int(sum(embedded["embedded"]))
        run.clock.add("embed", started)
        records = [json.loads((folder / f"part-{p.number:05d}.json").read_text())
                   for p in parts]
        report.documents = check_ids(records, source)
        check_dimensions(folder, parts, records, source)
        report.skipped = sum(r["skipped"] for r in records)
        schema = unify_metadata([(p.first_row, pa.ipc.read_schema(pa.py_buffer(
            bytes.fromhex(r["schema"])))) for p, r in zip(parts, records)], source)
        return gather_embeddings(folder, parts, records, scratch), schema

    def encode_write(self, run: BuildRun, folder: Path, model, embeddings: np.ndarray,
                     schema: pa.Schema) -> Written:
        segment, code_bytes = segment_folder(1), model.config.bits // 8
        started = time.perf_counter()
        written = run_stage(
            self.ray.data.from_items(self.specs).map_batches(
                encode_and_write, fn_kwargs={
                    "stream": run.stream, "encoder": model.export_encoder(), "root": str(folder),
                    "folder": segment, "metadata": schema, "code_bytes": code_bytes,
                    "vectors_folder": str(self.folder)},
                batch_size=1, num_cpus=1),
            "encode+write", run.config.show_progress)
        for leftover in (folder / segment).glob("_tmp-*"):  # a killed task's, before its retry
            shutil.rmtree(leftover, ignore_errors=True)
        order = np.argsort(written["part"])
        codes = np.concatenate([np.frombuffer(written["codes"][i], np.uint8)
                                for i in order]).reshape(-1, code_bytes)
        shards = [{"file": f"{segment}/{SHARDS_DIR}/part-{written['part'][i]:05d}.parquet",
                   "rows": int(written["rows"][i])} for i in order if written["rows"][i]]
        check_shards(folder, shards)
        run.clock.add("encode+write", started)
        writer = SegmentWriter(folder, segment, schema,
                               segment_settings(run.config, model.config.bits))
        return Written(codes, writer, shards or None)

    @contextmanager
    def failures(self):
        """A worker's failure told as the one-line error it stands for."""
        try:
            yield
        except HashIndexError:
            raise
        except Exception as error:
            known = ray_errors(error)
            if known is not None:
                raise known from None
            raise

    def finished(self, run: BuildRun) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)  # published: nothing left to resume


def run_stage(dataset, name: str, show_progress: bool) -> dict:
    """Run a stage, a bar advancing by documents (docs/s) as parts finish; its outputs as
    columns of lists."""
    out: dict[str, list] = {}
    with tqdm(desc=f"ray {name}", unit="doc", disable=not show_progress) as bar:
        for batch in dataset.iter_batches(batch_size=1, batch_format="numpy"):
            for key, values in batch.items():
                out.setdefault(key, []).extend(values.tolist())
            bar.update(int(sum(batch["rows"])))
    return out


def check_dimensions(folder: Path, parts, records, source) -> None:
    """Every part's vectors of one width (precomputed embeddings are checked within a part by
    its actor; parts from other actors or an earlier run only here)."""
    seen = None
    for part, record in zip(parts, records):
        if record["rows"]:
            dim = np.load(folder / f"part-{part.number:05d}.npy", mmap_mode="r").shape[1]
            if seen is not None and dim != seen[1]:
                raise HashIndexError(f"{source}: embeddings of dimension {dim} from data row "
                                     f"{part.first_row} on, {seen[1]} before (from row "
                                     f"{seen[0]}); give every row the same dimension")
            seen = seen or (part.first_row, dim)


def check_shards(out: Path, shards: list[dict]) -> None:
    """The shards the tasks wrote are in the staging folder, whole: a cluster whose nodes do
    not share the output's storage would otherwise publish an index without them."""
    for shard in shards:
        path = out / shard["file"]
        rows = pq.ParquetFile(path).metadata.num_rows if path.is_file() else None
        if rows != shard["rows"]:
            raise HashIndexError(f"{path} is {'missing' if rows is None else 'incomplete'} "
                                 "after the Ray tasks wrote it: put --out on storage every "
                                 "node shares")


def check_ids(records: list[dict], source) -> int:
    """Every id once across the parts (as the local build checks); the document count."""
    seen, count = UniqueIds(str(source), ID_HINT), 0
    for record in records:
        seen.add(record["ids"], count + 1)
        count += len(record["ids"])
    if count == 0:
        raise HashIndexError(f"{source}: no documents to index")
    return count


def embeddings_dim(records, folder: Path, parts) -> int:
    for part, record in zip(parts, records):
        if record["rows"]:
            return int(np.load(folder / f"part-{part.number:05d}.npy", mmap_mode="r").shape[1])
    return 0


def gather_embeddings(folder: Path, parts, records, scratch: Path) -> np.ndarray:
    """Every part's vectors in input order, in one scratch file (as the local build spills)."""
    scratch.mkdir(parents=True, exist_ok=True)
    dim = embeddings_dim(records, folder, parts)
    count = sum(r["rows"] for r in records)
    out = np.memmap(scratch / "embeddings.f32", dtype=np.float32, mode="w+", shape=(count, dim))
    at = 0
    for part, record in zip(parts, records):
        if record["rows"]:
            vectors = np.load(folder / f"part-{part.number:05d}.npy", mmap_mode="r")
            out[at : at + len(vectors)] = vectors
            at += len(vectors)
    out.flush()
    return np.memmap(scratch / "embeddings.f32", dtype=np.float32, mode="r", shape=(count, dim))

