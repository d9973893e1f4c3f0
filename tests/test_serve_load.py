"""The load benchmark: its driver and both load clients against a loopback HTTP/1.1 stub
(every request answered and counted, the budget and the clock obeyed), and the whole run end
to end at toy size: it starts the service, drives it from several clients, stops by itself and
writes its report, with no errors (it exits 1 on any)."""

import asyncio
import csv
import subprocess
import sys

import pytest

from benchmarks.serve_load import HOST
from benchmarks.serve_load.client import Clients
from benchmarks.serve_load.driver import drive
from benchmarks.serve_load.kinds import Kind, render
from benchmarks.serve_load.stats import Samples, summarize

ANSWER = b'{"hits":[],"timings":{"embed":0.01,"search":0.02,"total":0.03}}'


async def stub_server(requests: list[bytes]):
    """HTTP/1.1 keep-alive on 127.0.0.1: each request's body kept, the same 200 answered."""
    async def serve(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                requests.append(await reader.readexactly(length))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: " + str(len(ANSWER)).encode() + b"\r\n\r\n"
                             + ANSWER)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    return await asyncio.start_server(serve, HOST, 0)


@pytest.mark.parametrize("client", ["raw", "httpx"])
def test_the_driver_sends_every_request_and_counts_every_answer(client):
    kind = Kind("embedding", "POST", "/search", render("embedding", ["[0.5]", "[0.25]"]))

    async def run():
        requests: list[bytes] = []
        server = await stub_server(requests)
        pool = Clients(client, server.sockets[0].getsockname()[1], 3)
        samples = Samples()
        try:
            await drive(pool.connections, kind, 30.0, 40, samples)  # the budget ends it
            timed = Samples()
            await drive(pool.connections, kind, 0.2, float("inf"), timed)  # the clock ends it
        finally:
            await pool.aclose()
            server.close()
        return requests, samples, timed

    requests, samples, timed = asyncio.run(run())
    assert samples.statuses == {200: 40} and not samples.transport
    assert len(samples.latency) == 40 and all(s > 0 for s in samples.latency)
    assert samples.server[0] == (0.01, 0.02, 0.03) and samples.example == ANSWER
    assert requests[:2] == [b'{"embedding": [0.5], "k": 10}', b'{"embedding": [0.25], "k": 10}']
    assert timed.statuses[200] > 0 and not timed.transport
    assert len(requests) == 40 + timed.statuses[200]
    row = summarize(kind, 3, client, samples, 1.0, {})
    assert row["requests"] == 40 and row["errors"] == 0 and row["p50_ms"] > 0
    assert row["server_total_p50_ms"] == pytest.approx(0.03)


def test_the_driver_counts_a_refused_connection_as_an_error():
    kind = Kind("health", "GET", "/health", [b""])

    async def run():
        server = await stub_server([])
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        pool = Clients("raw", port, 1)
        samples = Samples()
        try:
            await drive(pool.connections, kind, 5.0, 3, samples)
        finally:
            await pool.aclose()
        return samples

    samples = asyncio.run(run())
    assert not samples.latency and sum(samples.transport.values()) == 3


def test_serve_load_runs_end_to_end_and_stops_by_itself(tmp_path):
    out = tmp_path / "results"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.serve_load", "--quick", "--indexes", "synthetic",
         "--documents", "3000", "--clients", "1", "4", "--seconds", "0.5", "--warmup", "0.1",
         "--no-compare-httpx", "--work", str(tmp_path / "work"), "--out", str(out),
         "--timeout", "400"],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = (out / "serve_load.md").read_text()
    assert "| synthetic" in report and "errors" in report
    with open(out / "serve_load.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert sorted((r["kind"], int(r["clients"])) for r in rows) == sorted(
        (kind, clients) for kind in ("embedding", "code", "batch of 16 embeddings")
        for clients in (1, 4))
    for row in rows:  # every cell measured something, and answered it
        assert row["client"] == "raw" and int(row["errors"]) == 0, row
        assert int(row["requests"]) > 0 and float(row["queries_per_s"]) > 0, row
        assert 0 < float(row["p50_ms"]) <= float(row["p99_ms"]), row
        assert float(row["server_total_p50_ms"]) > 0, row
    assert (out / "serve_load.png").stat().st_size > 0
