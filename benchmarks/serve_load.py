"""Load on the query service: `hashindex serve` started on a free loopback port (127.0.0.1),
driven by 1, 8 and 32 concurrent clients, each a sequential loop on its own keep-alive
HTTP/1.1 connection. Kinds of request: text queries (one sentence of at most 20 words from the
bundled sample, embedded by the service), embedding queries (384 floats), code queries (hex)
and POST /search/batch with 16 queries each; GET /health gives the floor of the HTTP stack.
Two indexes: the bundled sample (text model included) and N synthetic documents built from
precomputed clustered embeddings (default 1M, 64 bits, no text model: embedding, code and
batch only). Both are built once into --work and reused.

Every cell runs for --seconds or --max-requests, whichever comes first, after an untimed
warm-up; a hard --timeout ends the whole run. Per cell: requests/s, queries/s, client-side
p50/p95/p99 latency, errors (non-200 answers and transport errors), the client's and the
server's CPU (the server's event-loop thread apart), and the server's own timings (embed /
search / total) from each answer. The load client runs on the same machine as the server.
Writes benchmarks/results/serve_load.{md,csv,png} (--quick: small sizes, 2 s per cell,
results under --work unless --out is given).

    python -m benchmarks.serve_load [--documents 1000000] [--seconds 10] [--work DIR] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hashindex.app.serve.process import ServeProcess
from indexer.bench.report import write_csv

RESULTS = Path(__file__).resolve().parent / "results"
HOST = "127.0.0.1"
K = 10
MAX_WORDS = 20
BATCH = 16  # queries per POST /search/batch
REQUEST_TIMEOUT_S = 30.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
TIMINGS = re.compile(rb'"timings":\{"embed":([^,]+),"search":([^,]+),"total":([^}]+)\}')
TARGETS = ("text p50 ≤ 10 ms at 1 client; text ≥ 300 q/s at 32 clients with p99 ≤ 250 ms; "
           "embedding or code queries ≥ 2 000 q/s")


# ---- the indexes --------------------------------------------------------------------------

def published(folder: Path) -> bool:
    from hashindex.store.layout import MANIFEST_FILE

    return (folder / MANIFEST_FILE).is_file()  # a build publishes its folder atomically


def sample_index(work: Path) -> Path:
    """The bundled sample as `hashindex build --sample` builds it (embeddings stored)."""
    from indexer.build import BuildConfig, build_index
    from indexer.documents import ColumnOptions
    from indexer.samples import SAMPLE_PATH

    out = work / "sample-index"
    if not published(out):
        print(f"building the bundled sample into {out}", flush=True)
        build_index(BuildConfig(input=str(SAMPLE_PATH), out=str(out),
                                columns=ColumnOptions(id_column="id"), store_embeddings=True,
                                overwrite=True, show_progress=False))
    return out


def synthetic_index(work: Path, documents: int, bits: int, queries: int
                    ) -> tuple[Path, np.ndarray]:
    """N clustered 384-d unit vectors written to Parquet (id, a short text, embedding as
    fixed_size_list<float32>) and built with --embedding-column; `queries` more points of the
    same clusters, never indexed, are the embedding queries."""
    from hashindex.training import TrainConfig
    from indexer.bench.datasets import clustered_embeddings
    from indexer.build import BuildConfig, build_index
    from indexer.documents import ColumnOptions

    folder = work / f"synthetic-{documents}-{bits}"
    out, queries_file = folder / "index", folder / "queries.npy"
    if published(out) and queries_file.is_file():
        return out, np.load(queries_file)
    folder.mkdir(parents=True, exist_ok=True)
    print(f"generating {documents:,} clustered embeddings into {folder}", flush=True)
    vectors, labels = clustered_embeddings(documents + queries)
    data = folder / "documents.parquet"
    write_parquet(data, vectors[queries:], labels[queries:])
    held_out = vectors[:queries].copy()
    del vectors, labels
    print(f"building {documents:,} documents ({bits} bits) into {out}", flush=True)
    build_index(
        BuildConfig(input=str(data), out=str(out),
                    columns=ColumnOptions(text_column="text", id_column="id",
                                          embedding_column="embedding"),
                    bits=bits, store_embeddings=True, overwrite=True, use_cache=False,
                    show_progress=False),
        # the load does not depend on code quality: a short training bounds the build
        train_config=TrainConfig(epochs=5, max_train_docs=50_000, show_progress=False))
    np.save(queries_file, held_out)
    data.unlink()
    return out, held_out


def write_parquet(path: Path, vectors: np.ndarray, labels: np.ndarray,
                  chunk: int = 100_000) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    dim = vectors.shape[1]
    schema = pa.schema([("id", pa.string()), ("text", pa.string()),
                        ("embedding", pa.list_(pa.float32(), dim))])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, len(vectors), chunk):
            part = vectors[start : start + chunk]
            rows = range(start, start + len(part))
            writer.write_table(pa.table({
                "id": [f"doc-{i}" for i in rows],
                "text": [f"synthetic document {i} of cluster {labels[i]}" for i in rows],
                "embedding": pa.FixedSizeListArray.from_arrays(pa.array(part.reshape(-1)), dim),
            }, schema=schema))


def query_sentences() -> list[str]:
    """Distinct sentences of 3 to 20 words (longer ones cut) from the bundled sample's texts,
    shuffled: each text query differs from the last ones sent."""
    import random

    from indexer.samples import bundled_sample_texts

    seen: dict[str, None] = {}
    for text in bundled_sample_texts():
        for sentence in re.split(r"(?<=[.!?:])\s+", text):
            words = sentence.split()
            if len(words) >= 3:
                seen.setdefault(" ".join(words[:MAX_WORDS]))
    out = list(seen)
    random.Random(0).shuffle(out)
    return out


def sample_query_embeddings(index: Path, work: Path, sentences: list[str]) -> np.ndarray:
    """The text model's embeddings of query sentences (computed once, kept in --work): the
    embedding queries are the text queries without the model."""
    from hashindex.engine import HashIndex

    cached = work / f"sample-query-embeddings-{len(sentences)}.npy"
    if not cached.is_file():
        embedder = HashIndex.open(index).embedder()
        np.save(cached, embedder.embed(sentences))
    return np.load(cached)


# ---- request bodies -----------------------------------------------------------------------

@dataclass
class Kind:
    """One kind of request: a pool of pre-rendered bodies (one template, the query varied),
    sent in turn; the cursor carries over between cells so text queries are not repeated
    before the pool is used up."""

    name: str
    method: str
    path: str
    bodies: list[bytes]
    queries_per_request: int = 1
    cursor: int = 0
    sent: int = 0

    def next_body(self) -> bytes:
        body = self.bodies[self.cursor]
        self.cursor = (self.cursor + 1) % len(self.bodies)
        self.sent += 1
        return body


def vector_json(vector: np.ndarray) -> str:
    """7 significant digits: float32's own precision, as a lean client would send it."""
    return "[" + ",".join(f"{x:.7g}" for x in vector.tolist()) + "]"


def render(field_name: str, values: list[str]) -> list[bytes]:
    """One template per kind, {"<field>": <query>, "k": 10}, with each query put in."""
    prefix, suffix = json.dumps({field_name: "\0", "k": K}).split('"\\u0000"')
    return [(prefix + value + suffix).encode() for value in values]


def batches(singles: list[bytes], size: int) -> list[bytes]:
    count = len(singles) // size
    return [b'{"queries":[' + b",".join(singles[i * size : (i + 1) * size]) + b"]}"
            for i in range(count)]


def sample_kinds(index: Path, work: Path, quick: bool) -> list[Kind]:
    sentences = query_sentences()
    texts = render("text", [json.dumps(s) for s in sentences])
    embedded = sample_query_embeddings(index, work, sentences[: 256 if quick else 2048])
    embeddings = render("embedding", [vector_json(v) for v in embedded])
    return [Kind("health (GET /health)", "GET", "/health", [b""]),
            Kind("text", "POST", "/search", texts),
            Kind("embedding", "POST", "/search", embeddings),
            Kind(f"batch of {BATCH} embeddings", "POST", "/search/batch",
                 batches(embeddings, BATCH), BATCH),
            Kind(f"batch of {BATCH} texts", "POST", "/search/batch", batches(texts, BATCH),
                 BATCH)]


def synthetic_kinds(index: Path, queries: np.ndarray) -> list[Kind]:
    from hashindex.model_io import read_code_encoder
    from hashindex.store.layout import ENCODER_DIR

    codes = read_code_encoder(index / ENCODER_DIR).encode(queries)
    embeddings = render("embedding", [vector_json(v) for v in queries])
    return [Kind("embedding", "POST", "/search", embeddings),
            Kind("code", "POST", "/search", render("code", [f'"{c.tobytes().hex()}"'
                                                            for c in codes])),
            Kind(f"batch of {BATCH} embeddings", "POST", "/search/batch",
                 batches(embeddings, BATCH), BATCH)]


# ---- the server ---------------------------------------------------------------------------

class Server(ServeProcess):
    """`hashindex serve INDEX` with its default settings (hashindex/app/serve/process.py), its
    processes listed for the hard timeout, and its CPU time read from /proc."""

    running: list[subprocess.Popen] = []  # for the hard timeout

    def __init__(self, index: Path, log: Path, workers: int = 1):
        super().__init__(index, log, ["--workers", str(workers)] if workers > 1 else [],
                         ready_s=600, host=HOST)

    def __enter__(self) -> Server:
        super().__enter__()
        Server.running.append(self.process)
        return self

    def __exit__(self, *_) -> None:
        super().__exit__()
        if self.process in Server.running:
            Server.running.remove(self.process)

    def cpu(self) -> tuple[float, float]:
        """(processes, main threads) CPU seconds: utime + stime from /proc, of the serve
        process and its worker processes (--workers). A main thread runs uvicorn's event
        loop; FastAPI runs the (plain-function) endpoints in worker threads."""
        def seconds(stat: str) -> float:
            try:
                text = Path(stat).read_text()
            except OSError:  # a process that ended between listing and reading
                return 0.0
            fields = text[text.rfind(")") + 2 :].split()
            return (int(fields[11]) + int(fields[12])) / CLK_TCK

        def tree(pid: int) -> list[int]:
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                children = []
            return [pid] + [p for child in children for p in tree(int(child))]

        pids = tree(self.process.pid)
        return (sum(seconds(f"/proc/{pid}/stat") for pid in pids),
                sum(seconds(f"/proc/{pid}/task/{pid}/stat") for pid in pids))

    def batch_texts(self) -> tuple[float, float]:
        """(sum, count) of hashindex_embedding_batch_texts: texts per model call."""
        text = self.get("/metrics")[1].decode()
        found = dict(re.findall(r"^hashindex_embedding_batch_texts_(sum|count) (\S+)$", text,
                                re.M))
        return float(found.get("sum", 0)), float(found.get("count", 0))


# ---- the clients --------------------------------------------------------------------------

class ProtocolError(Exception):
    pass


class RawConnection:
    """HTTP/1.1 keep-alive on one asyncio stream: a fixed request head, the answer read by
    its Content-Length. Far less client CPU per request than httpx (see --compare-httpx)."""

    def __init__(self, port: int):
        self.port = port
        self.reader = self.writer = None
        self.heads: dict[tuple[str, str], bytes] = {}

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port)

    async def reset(self) -> None:
        await self.close()
        try:
            await self.connect()
        except OSError:  # the next request tries again, and counts its failure
            self.writer = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
            self.writer = None

    async def request(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        head = self.heads.get((method, path))
        if head is None:
            head = self.heads[method, path] = (
                f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
                + ("Content-Type: application/json\r\n" if method == "POST" else "")
                + "Content-Length: ").encode()
        if self.writer is None:
            await self.connect()
        self.writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
        header = await self.reader.readuntil(b"\r\n\r\n")
        lower = header.lower()
        start = lower.find(b"\r\ncontent-length:")
        if not header.startswith(b"HTTP/1.1 ") or start < 0:
            raise ProtocolError(header[:200])
        length = int(header[start + 17 : lower.find(b"\r\n", start + 2)])
        payload = await self.reader.readexactly(length)
        if b"\r\nconnection: close" in lower:
            await self.reset()
        return int(header[9:12]), payload


class HttpxConnection:
    """One simulated client on a shared httpx.AsyncClient (HTTP/1.1 keep-alive, its pool
    sized to the concurrency)."""

    def __init__(self, client):
        self.client = client

    async def connect(self) -> None:
        pass

    async def reset(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def request(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        answer = await self.client.request(method, path, content=body or None,
                                           headers={"Content-Type": "application/json"}
                                           if body else None)
        return answer.status_code, answer.content


@dataclass
class Samples:
    latency: list[float] = field(default_factory=list)
    server: list[tuple[float, float, float]] = field(default_factory=list)  # embed,search,total
    response_bytes: int = 0
    request_bytes: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    transport: dict[str, int] = field(default_factory=dict)
    last_done: float = 0.0
    example: bytes = b""

    def add(self, seconds: float, status: int, body: bytes, payload: bytes, done: float):
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status != 200:
            return
        self.latency.append(seconds)
        self.request_bytes += len(body)
        self.response_bytes += len(payload)
        self.last_done = done
        found = TIMINGS.findall(payload)
        if found:  # a batch: each query's timings, summed
            self.server.append(tuple(sum(float(t[i]) for t in found) for i in range(3)))
        if not self.example:
            self.example = payload


async def drive(connections, kind: Kind, seconds: float, max_requests: float,
                samples: Samples, alive=lambda: True) -> None:
    """Each connection a sequential loop until the time or the request budget is spent, or
    the server is gone."""
    end = time.perf_counter() + seconds
    issued, gone = 0, False
    errors = (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
              TimeoutError, ProtocolError, ValueError)
    try:
        import httpx

        errors += (httpx.HTTPError,)
    except ImportError:  # the raw client needs no httpx
        pass

    async def loop(connection):
        nonlocal issued, gone
        while time.perf_counter() < end and issued < max_requests and not gone:
            issued += 1
            body = kind.next_body()
            started = time.perf_counter()
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    status, payload = await connection.request(kind.method, kind.path, body)
            except errors as error:
                name = type(error).__name__
                samples.transport[name] = samples.transport.get(name, 0) + 1
                gone = gone or not alive()
                await connection.reset()
                continue
            done = time.perf_counter()
            samples.add(done - started, status, body, payload, done)

    await asyncio.gather(*(loop(c) for c in connections))


async def measure_cell(server: Server, kind: Kind, clients: int, seconds: float,
                       warmup: float, max_requests: int, client_name: str) -> dict:
    """One cell. A server that dies in it ends it; the death is counted as an error (and
    the errors of the warm-up too: they are the service's)."""
    httpx_client = None
    if client_name == "httpx":
        import httpx

        httpx_client = httpx.AsyncClient(
            base_url=f"http://{HOST}:{server.port}", timeout=REQUEST_TIMEOUT_S,
            limits=httpx.Limits(max_connections=clients, max_keepalive_connections=clients))
        connections = [HttpxConnection(httpx_client) for _ in range(clients)]
    else:
        connections = [RawConnection(server.port) for _ in range(clients)]
    nan = float("nan")

    def server_state():
        try:
            return (*server.cpu(), *server.batch_texts())
        except OSError:  # the process is gone
            return nan, nan, nan, nan

    await asyncio.gather(*(c.reset() for c in connections))
    warm = Samples()
    try:
        if warmup > 0:
            await drive(connections, kind, warmup, float("inf"), warm, server.alive)
        before = server_state()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        client_before = usage.ru_utime + usage.ru_stime
        samples = Samples()
        started = time.perf_counter()
        if server.alive():
            await drive(connections, kind, seconds, max_requests, samples, server.alive)
        ended = time.perf_counter()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        client_cpu = usage.ru_utime + usage.ru_stime - client_before
        after = server_state()
    finally:
        await asyncio.gather(*(c.close() for c in connections))
        if httpx_client is not None:
            await httpx_client.aclose()
    for status, count in warm.statuses.items():
        if status != 200:
            samples.statuses[status] = samples.statuses.get(status, 0) + count
    for name, count in warm.transport.items():
        samples.transport[name] = samples.transport.get(name, 0) + count
    if not server.alive():
        code = server.process.returncode
        how = signal.Signals(-code).name if code < 0 else f"exit {code}"
        samples.transport[f"the server died ({how})"] = 1
    wall = ended - started
    if not samples.latency:  # nothing measured (the server died in the warm-up)
        client_cpu, before, after = nan, (nan,) * 4, (nan,) * 4
    wall = max(wall, 1e-9)
    calls = after[3] - before[3]
    return summarize(kind, clients, client_name, samples, wall, {
        "client_cpu_pct": 100 * client_cpu / wall,
        "server_cpu_pct": 100 * (after[0] - before[0]) / wall,
        "server_loop_cpu_pct": 100 * (after[1] - before[1]) / wall,
        "texts_per_model_call": (after[2] - before[2]) / calls if calls > 0 else 0.0,
    })


def summarize(kind: Kind, clients: int, client_name: str, samples: Samples, wall: float,
              cpu: dict) -> dict:
    latency = np.asarray(samples.latency) * 1000
    ok = len(latency)
    errors = sum(n for status, n in samples.statuses.items() if status != 200)
    errors += sum(samples.transport.values())
    detail = [f"HTTP {s}: {n}" for s, n in samples.statuses.items() if s != 200]
    detail += [f"{name}: {n}" for name, n in samples.transport.items()]
    server = np.asarray(samples.server) if samples.server else np.zeros((0, 3))

    def pct(values, q):
        return float(np.percentile(values, q)) if len(values) else float("nan")

    # the client latency less the server's own total, request by request (1 client: paired)
    overhead = (latency[: len(server)] - server[:, 2]) if len(server) == ok and ok else []
    return {
        "client": client_name, "kind": kind.name, "clients": clients, "requests": ok,
        "queries": ok * kind.queries_per_request, "seconds": round(wall, 2),
        "requests_per_s": ok / wall if wall else 0.0,
        "queries_per_s": ok * kind.queries_per_request / wall if wall else 0.0,
        "p50_ms": pct(latency, 50), "p95_ms": pct(latency, 95), "p99_ms": pct(latency, 99),
        "mean_ms": float(latency.mean()) if ok else float("nan"),
        "errors": errors, "error_detail": "; ".join(detail),
        "server_embed_p50_ms": pct(server[:, 0], 50),
        "server_search_p50_ms": pct(server[:, 1], 50),
        "server_total_p50_ms": pct(server[:, 2], 50),
        "overhead_p50_ms": pct(overhead, 50),
        **cpu,
        "request_bytes": samples.request_bytes / ok if ok else 0,
        "response_bytes": samples.response_bytes / ok if ok else 0,
        "_example": samples.example,
    }


# ---- the event loop's share of a request, measured offline in this process ----------------

def loop_work(kind: Kind, example: bytes) -> dict | None:
    """What the service's event-loop thread does with one request of this kind besides HTTP
    (FastAPI runs it there: only the endpoint goes to the thread pool): parse the body's
    JSON, validate it with pydantic, jsonable_encoder the answer and json.dumps it. Timed
    here on a body and an answer of the run, the median of 200 repeats, in µs; the
    alternatives: pydantic parsing the JSON itself (model_validate_json) and
    pydantic_core.to_json for the answer."""
    if kind.method != "POST" or not example:
        return None
    from fastapi.encoders import jsonable_encoder
    from pydantic_core import to_json

    from hashindex.app.serve.schema import BatchBody, SearchBody

    model = BatchBody if kind.path.endswith("/batch") else SearchBody
    body = kind.bodies[0]
    answer = json.loads(example)

    def timed(function) -> float:
        out = []
        for _ in range(200):
            started = time.perf_counter()
            function()
            out.append(time.perf_counter() - started)
        return 1e6 * statistics.median(out)

    parsed = json.loads(body)
    return {
        "kind": kind.name, "request_bytes": len(body), "response_bytes": len(example),
        "json.loads body": timed(lambda: json.loads(body)),
        "pydantic validate": timed(lambda: model.model_validate(parsed)),
        "model_validate_json": timed(lambda: model.model_validate_json(body)),
        "jsonable_encoder answer": timed(lambda: jsonable_encoder(answer)),
        "json.dumps answer": timed(lambda: json.dumps(answer, ensure_ascii=False,
                                                      separators=(",", ":"))),
        "pydantic_core.to_json answer": timed(lambda: to_json(answer)),
    }


# ---- the run ------------------------------------------------------------------------------

def arm_hard_timeout(seconds: float) -> None:
    def expire():
        print(f"serve_load: the hard timeout of {seconds:.0f} s is reached; stopping the "
              "servers and exiting", file=sys.stderr, flush=True)
        for process in list(Server.running):
            process.kill()
        os._exit(3)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()


def run_index(label: str, index: Path, kinds: list[Kind], args, log: Path, rows: list,
              offline: list) -> None:
    """Every kind × clients cell against one server, started again if a cell killed it."""
    server = None
    try:
        for kind in kinds:
            plans = [(args.client, c) for c in args.clients]
            if args.compare_httpx and label == "sample" and kind.name == "embedding":
                plans += [("httpx", c) for c in (1, max(args.clients))]
            example = b""
            for client_name, clients in plans:
                if server is None or not server.alive():
                    if server is not None:
                        server.__exit__()
                        print(f"the server died (exit {server.process.returncode}); starting "
                              f"it again (log: {log})", flush=True)
                    server = Server(index, log, args.workers).__enter__()
                row = asyncio.run(measure_cell(server, kind, clients, args.seconds,
                                               args.warmup, args.max_requests, client_name))
                example = example or row.pop("_example")
                row.pop("_example", None)
                row = {"index": label, **row}
                rows.append(row)
                print(f"{label:>9} {client_name:>5} {kind.name:>24} ×{clients:<3} "
                      f"{row['requests_per_s']:8.1f} req/s {row['queries_per_s']:8.1f} q/s  "
                      f"p50 {row['p50_ms']:7.2f}  p95 {row['p95_ms']:7.2f}  "
                      f"p99 {row['p99_ms']:7.2f} ms  errors {row['errors']} "
                      f"{row['error_detail']}  client CPU {row['client_cpu_pct']:.0f}%  "
                      f"server CPU {row['server_cpu_pct']:.0f}% "
                      f"(loop {row['server_loop_cpu_pct']:.0f}%)", flush=True)
            measured = loop_work(kind, example)
            if measured:
                offline.append({"index": label, **measured})
    finally:
        if server is not None:
            server.__exit__()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=None,
                        help="synthetic documents (default 1,000,000; --quick: 20,000)")
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=None,
                        help="measured seconds per cell (default 10; --quick: 2)")
    parser.add_argument("--warmup", type=float, default=None,
                        help="untimed seconds before each cell (default 1; --quick: 0.3)")
    parser.add_argument("--max-requests", type=int, default=100_000,
                        help="requests per cell at most")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--workers", type=int, default=1,
                        help="the service's worker processes (serve --workers)")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw",
                        help="load client: asyncio streams with a fixed request head, or httpx")
    parser.add_argument("--compare-httpx", action=argparse.BooleanOptionalAction, default=True,
                        help="also run the sample's embedding queries with httpx")
    parser.add_argument("--indexes", nargs="+", choices=("sample", "synthetic"),
                        default=["sample", "synthetic"])
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "serve-load"),
                        help="built indexes (reused by later runs) and server logs")
    parser.add_argument("--out", default=None,
                        help="results folder (default benchmarks/results; --quick: WORK/results)")
    parser.add_argument("--timeout", type=float, default=2400,
                        help="hard limit in seconds on the whole run, builds included")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes: 20,000 synthetic documents, 2 s per cell")
    args = parser.parse_args(argv)
    arm_hard_timeout(args.timeout)
    args.documents = args.documents or (20_000 if args.quick else 1_000_000)
    args.seconds = args.seconds or (2.0 if args.quick else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (0.3 if args.quick else 1.0)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    out = Path(args.out) if args.out else (work / "results" if args.quick else RESULTS)
    from indexer.bench.measure import machine_record

    command = " ".join(["python -m benchmarks.serve_load", *sys.argv[1:]])
    machine = machine_record().split("; command:")[0] + f"; command: `{command}`"
    started = time.perf_counter()
    rows: list[dict] = []
    offline: list[dict] = []
    if "sample" in args.indexes:
        index = sample_index(work)
        run_index("sample", index, sample_kinds(index, work, args.quick), args,
                  work / "serve-sample.log", rows, offline)
    if "synthetic" in args.indexes:
        index, queries = synthetic_index(work, args.documents, args.bits,
                                         256 if args.quick else 4096)
        run_index("synthetic", index, synthetic_kinds(index, queries), args,
                  work / "serve-synthetic.log", rows, offline)
    write_report(out, rows, offline, machine, args, time.perf_counter() - started)
    errors = sum(row["errors"] for row in rows)
    print(f"errors over all cells: {errors}", flush=True)
    if errors:
        sys.exit(1)


# ---- the report ---------------------------------------------------------------------------

def fmt(value: float, digits: int = 1) -> str:
    return "—" if value != value else f"{value:,.{digits}f}"  # NaN: no such figure


def share(value: float) -> str:
    return "—" if value != value else f"{value:.0f}%"


def index_label(row: dict, args) -> str:
    return ("sample (3,190 docs, text model)" if row["index"] == "sample"
            else f"synthetic {args.documents:,} × 384-d, {args.bits} bits")


def clients_text(n: int) -> str:
    return f"{n} client" + ("s" if n != 1 else "")


def target_lines(rows: list[dict], every: list[dict]) -> list[str]:
    def cell(kind, clients, index="sample"):
        return next((r for r in rows if r["index"] == index and r["kind"] == kind
                     and r["clients"] == clients and r["client"] != "httpx"), None)

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    errors = sum(r["errors"] for r in every)
    lines = [f"- no errors: {verdict(errors == 0)} ({errors} over {len(every)} cells)"]
    one = cell("text", 1)
    if one:
        lines.append(f"- text queries p50 ≤ 10 ms at 1 client: {verdict(one['p50_ms'] <= 10)} "
                     f"(p50 {one['p50_ms']:.2f} ms, of which the server's embed "
                     f"{one['server_embed_p50_ms']:.2f} ms and search "
                     f"{one['server_search_p50_ms']:.2f} ms)")
    many = cell("text", 32)
    if many:
        ok = many["queries_per_s"] >= 300 and many["p99_ms"] <= 250
        lines.append(f"- text queries ≥ 300 q/s at 32 clients with p99 ≤ 250 ms: {verdict(ok)} "
                     f"({many['queries_per_s']:,.0f} q/s, p99 {many['p99_ms']:.1f} ms)")
    fast = [r for r in rows if r["client"] != "httpx" and r["kind"] in ("embedding", "code")]
    if fast:
        best: dict[tuple[str, str], dict] = {}
        for r in fast:
            key = (r["index"], r["kind"])
            if key not in best or r["queries_per_s"] > best[key]["queries_per_s"]:
                best[key] = r
        top = max(best.values(), key=lambda r: r["queries_per_s"])
        each = "; ".join(f"{r['index']} {r['kind']}: {r['queries_per_s']:,.0f} q/s at "
                         f"{clients_text(r['clients'])}" for r in best.values())
        lines.append(f"- embedding or code queries ≥ 2 000 q/s (one query per request): "
                     f"{verdict(top['queries_per_s'] >= 2000)} (the best of each: {each})")
        batched = [r for r in rows if r["client"] != "httpx" and "embeddings" in r["kind"]]
        if batched:
            top = max(batched, key=lambda r: r["queries_per_s"])
            lines.append(f"  - in batches of {BATCH}: {top['queries_per_s']:,.0f} q/s "
                         f"({top['index']}, {clients_text(top['clients'])})")
    return lines


def workers_text(n: int) -> str:
    return "one process" if n == 1 else f"{n} worker processes"


def reading_lines(rows: list[dict], every: list[dict], workers: int = 1) -> list[str]:
    """Facts computed from the cells that point at the bottlenecks."""
    def cell(index, kind, clients, client=None):
        return next((r for r in every if r["index"] == index and r["kind"] == kind
                     and r["clients"] == clients and (client is None or r["client"] == client)),
                    None)

    most = max(rows, key=lambda r: r["clients"])["clients"]
    lines = []
    health = [r for r in rows if r["kind"].startswith("health")]
    if health:
        top = max(health, key=lambda r: r["requests_per_s"])
        lines.append(f"- the HTTP stack alone (GET /health, no search): at most "
                     f"{top['requests_per_s']:,.0f} requests/s, with the server's event-loop "
                     f"thread(s) at {share(top['server_loop_cpu_pct'])} of a core: the "
                     f"ceiling of the service ({workers_text(workers)}) for any request, "
                     "before any search")
    for index in dict.fromkeys(r["index"] for r in rows):
        for kind in ("embedding", f"batch of {BATCH} embeddings"):
            one, many = cell(index, kind, 1, rows[0]["client"]), cell(index, kind, most,
                                                                       rows[0]["client"])
            if one and many and one["queries_per_s"]:
                lines.append(
                    f"- {index} {kind}: {many['queries_per_s']:,.0f} q/s at {most} clients "
                    f"against {one['queries_per_s']:,.0f} at 1 "
                    f"({many['queries_per_s'] / one['queries_per_s']:.2f}×); the server's own "
                    f"total per request grows from {fmt(one['server_total_p50_ms'], 2)} to "
                    f"{fmt(many['server_total_p50_ms'], 2)} ms (p50), with the server at "
                    f"{share(many['server_cpu_pct'])} CPU")
    measured = [r["client_cpu_pct"] for r in rows if r["client_cpu_pct"] == r["client_cpu_pct"]]
    if measured:
        lines.append(f"- the load client ({rows[0]['client']}) used at most "
                     f"{max(measured):.0f}% of a core in any cell")
    httpx_many = cell("sample", "embedding", most, "httpx")
    if httpx_many:
        lines.append(f"- httpx as the client: {share(httpx_many['client_cpu_pct'])} of a core "
                     f"at {most} clients ({httpx_many['requests_per_s']:,.0f} requests/s): it "
                     "would measure itself, not the server")
    return lines


def write_report(out: Path, rows: list[dict], offline: list[dict], machine: str, args,
                 seconds: float) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "serve_load.csv",
              [{k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}
               for r in rows])
    main_rows = [r for r in rows if r["client"] == args.client]
    lines = [
        "# Query service under load (`hashindex serve`, loopback)", "",
        f"- machine: {machine}",
        f"- the load client runs on the same machine as the server ({os.cpu_count()} cores "
        f"shared): one Python process, asyncio, one sequential loop per simulated client on its "
        f"own keep-alive HTTP/1.1 connection to 127.0.0.1; client: {args.client} "
        + ("(asyncio streams, a fixed request head, the answer read by Content-Length: see the "
           "httpx comparison below)" if args.client == "raw" else "(httpx.AsyncClient)"),
        (f"- server: `hashindex serve INDEX --workers {args.workers}` (uvicorn, "
         f"{args.workers} worker processes on one socket, each with "
         f"{max(1, (os.cpu_count() or 1) // args.workers)} text-model threads"
         if args.workers > 1 else
         "- server: `hashindex serve INDEX` (uvicorn, one worker process")
        + "; otherwise its defaults: --batch-window-ms 0, --max-text-batch 16, "
        "--reload-interval 1; one access-log line per request, to a file)",
        f"- each cell: an untimed warm-up of {args.warmup:g} s, then {args.seconds:g} s or "
        f"{args.max_requests:,} requests, whichever first; k = {K}; latency is the client's "
        "(request written to answer read), percentiles over the cell's requests",
        "- indexes: the bundled sample (3,190 docstring paragraphs, all-MiniLM-L6-v2 in "
        "openvino, ae:vanilla 64 bits, embeddings stored, as `hashindex build --sample`); "
        f"synthetic: {args.documents:,} clustered 384-d unit vectors (2,000 clusters) from a "
        "Parquet embedding column (`--embedding-column`), ae:vanilla "
        f"{args.bits} bits (5 epochs on 50,000 of them), embeddings stored (int8); no text model",
        "- queries: text: distinct sentences of the sample, at most 20 words, never repeated "
        "within the run; embedding: on the sample the text model's embeddings of such "
        "sentences, on synthetic held-out points of the same clusters (never indexed), 7 "
        "significant digits per float in the JSON; code: the index's own encoder's codes of "
        f"those points (hex); batches: {BATCH} such queries per POST /search/batch",
        "- CPU: the share of one core over the cell's wall time (100% = one core; the machine "
        f"has {os.cpu_count()}): client = this process (getrusage); server = the serve process "
        "and its workers (/proc utime + stime), and their main threads apart, which run "
        "uvicorn's event loops",
        f"- targets (the issue): {TARGETS}",
        f"- whole run {seconds / 60:.1f} min", "",
        "| index | kind | clients | requests/s | queries/s | p50 ms | p95 ms | p99 ms | errors "
        "| server total p50 ms | client CPU | server CPU | server loop thread | texts per model "
        "call |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in main_rows:
        per_call = fmt(r["texts_per_model_call"]) if r["texts_per_model_call"] else "—"
        lines.append(
            f"| {index_label(r, args)} | {r['kind']} | {r['clients']} | "
            f"{fmt(r['requests_per_s'])} | {fmt(r['queries_per_s'])} | {fmt(r['p50_ms'], 2)} | "
            f"{fmt(r['p95_ms'], 2)} | {fmt(r['p99_ms'], 2)} | {r['errors']} | "
            f"{fmt(r['server_total_p50_ms'], 2)} | {share(r['client_cpu_pct'])} | "
            f"{share(r['server_cpu_pct'])} | {share(r['server_loop_cpu_pct'])} | {per_call} |")
    errors = [r for r in rows if r["errors"]]
    lines += ["", f"Errors (non-200 answers and transport errors): "
              f"{sum(r['errors'] for r in rows)} over {len(rows)} cells"
              + "".join(f"; {r['index']} {r['kind']} ×{r['clients']}: {r['error_detail']}"
                        for r in errors) + ".", "", "## Against the targets", "",
              *target_lines(main_rows, rows), "", "## Reading the figures", "",
              *reading_lines(main_rows, rows, args.workers)]
    lines += ["", "## Where the time of one request goes (1 client)", "",
              "The server's timings come from each answer (`timings`: embed = waiting for and "
              "computing the embedding, search = code + table + re-rank + documents, total = "
              "both and the request's checks; a batch: summed over its queries). They start "
              "after the body is parsed and end before the answer is built, so the client's "
              "latency less the server's total is HTTP (uvicorn's h11 parser), FastAPI (body "
              "JSON + pydantic validation, the thread-pool hop, the answer's jsonable_encoder + "
              "json.dumps), middleware and access log, the loopback and this client; its median "
              "is taken request by request. A batch of texts has its one model call before "
              "the queries' timers start (each answer's embed is ≈ 0), so that call is in the "
              "rest. Server CPU per request: the serve process's CPU time over the cell "
              "divided by its requests (the loop thread's apart).", "",
              "| index | kind | client p50 ms | server total p50 ms | embed p50 ms | search p50 ms "
              "| rest (HTTP + JSON + client) p50 ms | server CPU ms / request | of which loop "
              "thread | request bytes | answer bytes |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in main_rows:
        if r["clients"] == 1:
            per = 10 / r["requests_per_s"] if r["requests_per_s"] else float("nan")
            lines.append(
                f"| {r['index']} | {r['kind']} | {fmt(r['p50_ms'], 2)} | "
                f"{fmt(r['server_total_p50_ms'], 2)} | {fmt(r['server_embed_p50_ms'], 2)} | "
                f"{fmt(r['server_search_p50_ms'], 2)} | {fmt(r['overhead_p50_ms'], 2)} | "
                f"{fmt(r['server_cpu_pct'] * per, 2)} | {fmt(r['server_loop_cpu_pct'] * per, 2)} "
                f"| {r['request_bytes']:,.0f} | {r['response_bytes']:,.0f} |")
    if offline:
        names = [k for k in offline[0] if k not in ("index", "kind", "request_bytes",
                                                    "response_bytes")]
        lines += ["", "The event-loop thread's own work per request besides HTTP, timed in the "
                  "client process on a body and an answer of the run (median of 200, µs; "
                  "FastAPI does these on the event loop, only the endpoint runs in the thread "
                  "pool); model_validate_json and pydantic_core.to_json are the alternatives:",
                  "", "| index | kind | " + " | ".join(names) + " |",
                  "|---|---|" + "---:|" * len(names)]
        for m in offline:
            lines.append(f"| {m['index']} | {m['kind']} | "
                         + " | ".join(f"{m[n]:,.0f}" for n in names) + " |")
    compared = [r for r in rows if r["index"] == "sample" and r["kind"] == "embedding"
                and r["clients"] in (1, max(args.clients))]
    if any(r["client"] == "httpx" for r in compared):
        lines += ["", "## Load client: raw asyncio streams against httpx", "",
                  "The sample's embedding queries, the same server, the same bodies:", "",
                  "| client | clients | requests/s | p50 ms | p99 ms | client CPU | server CPU |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for r in sorted(compared, key=lambda r: (r["client"], r["clients"])):
            lines.append(f"| {r['client']} | {r['clients']} | {fmt(r['requests_per_s'])} | "
                         f"{fmt(r['p50_ms'], 2)} | {fmt(r['p99_ms'], 2)} | "
                         f"{share(r['client_cpu_pct'])} | {share(r['server_cpu_pct'])} |")
    (out / "serve_load.md").write_text("\n".join(lines) + "\n")
    plot(out / "serve_load.png", main_rows, args)
    print("\n".join(lines), flush=True)


def plot(path: Path, rows: list[dict], args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    indexes = list(dict.fromkeys(r["index"] for r in rows))
    fig, axes = plt.subplots(2, len(indexes), figsize=(5.5 * len(indexes), 7.5), squeeze=False)
    for column, name in enumerate(indexes):
        mine = [r for r in rows if r["index"] == name]
        for kind in dict.fromkeys(r["kind"] for r in mine):
            cells = [r for r in mine if r["kind"] == kind]
            clients = [r["clients"] for r in cells]
            axes[0][column].plot(clients, [r["queries_per_s"] for r in cells], "o-", label=kind)
            axes[1][column].plot(clients, [r["p99_ms"] for r in cells], "o-", label=kind)
        axes[0][column].set_title(index_label(mine[0], args))
        for row, label in ((0, "queries/s"), (1, "p99 latency (ms)")):
            ax = axes[row][column]
            ax.set_xscale("log", base=2)
            if row == 1:
                ax.set_yscale("log")
            else:
                ax.set_ylim(bottom=0)
            ax.set_xticks(args.clients, [str(c) for c in args.clients])
            ax.set_xlabel("concurrent clients")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        axes[0][column].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
