"""A cell's samples (each answer's latency, status, sizes and the server's own timings) and
their summary row: rates, percentiles, errors, CPU shares."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from benchmarks.serve_load.kinds import Kind

TIMINGS = re.compile(rb'"timings":\{"embed":([^,]+),"search":([^,]+),"total":([^}]+)\}')


@dataclass
class Samples:
    """What one cell's answers gave: latencies and the server's timings of the 200s, sizes,
    statuses, transport errors by name, one answer for the offline measurement."""

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

    def add_errors(self, other: Samples) -> None:
        """Count `other`'s errors too (a warm-up's: they are the service's)."""
        for status, count in other.statuses.items():
            if status != 200:
                self.statuses[status] = self.statuses.get(status, 0) + count
        for name, count in other.transport.items():
            self.transport[name] = self.transport.get(name, 0) + count


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

