"""The load generator: every kind × client-count cell against one `hashindex serve` on
127.0.0.1 (the clients can reach nothing else). It stops by itself: each cell after its
warm-up and --seconds or --max-requests, whichever first, each request after
REQUEST_TIMEOUT_S, the whole run at the hard --timeout (which kills the servers)."""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import sys
import threading
import time
from pathlib import Path

from benchmarks.serve_load.client import REQUEST_TIMEOUT_S, Clients, transport_errors
from benchmarks.serve_load.kinds import Kind
from benchmarks.serve_load.loop_work import loop_work
from benchmarks.serve_load.server import Server
from benchmarks.serve_load.stats import Samples, summarize


async def drive(connections, kind: Kind, seconds: float, max_requests: float,
                samples: Samples, alive=lambda: True) -> None:
    """Each connection a sequential loop until the time or the request budget is spent, or
    the server is gone."""
    end = time.perf_counter() + seconds
    issued, gone = 0, False
    errors = transport_errors()

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
    pool = Clients(client_name, server.port, clients)
    connections = pool.connections
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
        await pool.aclose()
    samples.add_errors(warm)
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

