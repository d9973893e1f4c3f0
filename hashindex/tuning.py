"""Each index tuned to a recall target when it is built (autofaiss's idea): a sample of its own
documents serve as queries, their exact top-k (by the build's float embeddings, each query's
own row left out) is the truth, and every setting of every backend the index has (a re-rank
budget for the table, ef_search for the graph, the exact scan) is run on them, recording
recall@k and queries/s. A query then takes the cheapest recorded setting whose recall meets
its target, or the most accurate one and says so. Math only: the search is a callable.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from hashindex.errors import HashIndexError

TUNED_K = 10
SAMPLE_QUERIES = 1000
DEFAULT_TARGET = 0.95
STALE_SHARE = 0.2  # documents added since the tuning, as a share of the index: then stale
# the knob values swept, cheapest first; a backend's sweep stops once a setting is ~exact
RERANK_BUDGETS = (10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 10240)
EF_SEARCH = (10, 12, 16, 20, 24, 32, 40, 48, 64, 96, 128, 192, 256, 384, 512)
NEAR_EXACT = 0.999
TIMED_QUERIES = 200  # queries timed per setting (recall is measured on every query)
QPS_NOISE = 0.1  # settings this close in queries/s are told apart by recall, not speed


@dataclass(frozen=True)
class Setting:
    """One swept setting: what a query runs, and what it measured."""

    backend: str
    backend_options: dict = field(default_factory=dict)  # the backend's query knobs
    rerank_candidates: int | None = None
    recall: float = 0.0
    qps: float = 0.0

    def describe(self) -> str:
        knobs = [f"{k}={v}" for k, v in self.backend_options.items()]
        if self.rerank_candidates:
            knobs.append(f"rerank_candidates={self.rerank_candidates}")
        return self.backend + (f" ({', '.join(knobs)})" if knobs else "")

    def scaled(self, k: int, tuned_k: int) -> Setting:
        """The setting for k results where it was tuned for tuned_k: its budget grown in
        proportion (a beam or a re-rank list k/tuned_k times as long)."""
        if k <= tuned_k:
            return self
        factor = k / tuned_k
        options = dict(self.backend_options)
        if "ef_search" in options:
            options["ef_search"] = math.ceil(options["ef_search"] * factor)
        budget = (math.ceil(self.rerank_candidates * factor) if self.rerank_candidates
                  else None)
        return Setting(self.backend, options, budget, self.recall, self.qps)


@dataclass(frozen=True)
class Tuning:
    """The sweep an index recorded in its manifest (`tuning`)."""

    k: int
    queries: int
    target_recall: float  # the build's default target
    rows: int  # the index's rows when it was tuned (adds since make it stale)
    truth: str  # what recall was measured against
    settings: tuple[Setting, ...]
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "settings": [asdict(s) for s in self.settings]}

    @classmethod
    def from_dict(cls, data: dict | None) -> Tuning | None:
        if not data:
            return None
        try:
            settings = tuple(Setting(**s) for s in data["settings"])
            return cls(int(data["k"]), int(data["queries"]), float(data["target_recall"]),
                       int(data["rows"]), str(data["truth"]), settings,
                       float(data.get("seconds", 0.0)))
        except (KeyError, TypeError, ValueError):
            raise HashIndexError("the manifest's tuning table is damaged; rebuild the index "
                                 "or run `hashindex compact` to tune it again") from None

    stale_share = STALE_SHARE

    def stale(self, rows: int, documents: int) -> bool:
        """Documents added since the tuning pass STALE_SHARE of the index."""
        return documents > 0 and (rows - self.rows) / documents > STALE_SHARE

    def choose(self, target: float, backend: str | None = None
               ) -> tuple[Setting, str | None]:
        """The fastest setting (of `backend`, when given) whose recall meets `target`; else
        the most accurate, with a note saying what it reaches."""
        pool = [s for s in self.settings if backend is None or s.backend == backend]
        if not pool:
            raise HashIndexError(f"the index was tuned without backend {backend}")
        meeting = [s for s in pool if s.recall >= target]
        if meeting:  # the fastest; settings within timing noise of it: the most accurate
            fastest = max(s.qps for s in meeting)
            near = [s for s in meeting if s.qps >= (1 - QPS_NOISE) * fastest]
            return max(near, key=lambda s: (s.recall, s.qps)), None
        best = max(pool, key=lambda s: (s.recall, s.qps))
        return best, (f"no tuned setting reaches recall@{self.k} {target:g}; "
                      f"the most accurate ({best.describe()}) reached {best.recall:.3f}")


def check_target(value, name: str = "target_recall") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HashIndexError(f"{name} must be a number between 0 and 1, got {value!r}")
    if not (0.0 < float(value) <= 1.0):
        raise HashIndexError(f"{name}={value!r} is out of range: give a recall between 0 "
                             "(exclusive) and 1, e.g. 0.95")
    return float(value)


def sample_rows(rows: int, count: int = SAMPLE_QUERIES, seed: int = 0) -> np.ndarray:
    """Up to `count` distinct rows, sorted (every row of a small index)."""
    if rows <= count:
        return np.arange(rows, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(rows, count, replace=False))


def exact_neighbours(embeddings: np.ndarray, rows: np.ndarray, k: int,
                     chunk_rows: int = 65_536) -> np.ndarray:
    """int64 (len(rows), k): each sampled row's k nearest rows by dot product over every row
    of `embeddings` (float32, may be memory-mapped), the row itself left out; -1 pads where
    the index holds fewer than k others."""
    queries = np.ascontiguousarray(embeddings[rows], dtype=np.float32)
    best_scores = np.full((len(rows), k), -np.inf, dtype=np.float32)
    best_rows = np.full((len(rows), k), -1, dtype=np.int64)
    for start in range(0, len(embeddings), chunk_rows):
        block = np.asarray(embeddings[start : start + chunk_rows], dtype=np.float32)
        scores = queries @ block.T
        own = (rows >= start) & (rows < start + len(block))
        scores[np.flatnonzero(own), rows[own] - start] = -np.inf
        both_scores = np.concatenate([best_scores, scores], axis=1)
        both_rows = np.concatenate([best_rows, np.broadcast_to(
            np.arange(start, start + len(block)), scores.shape)], axis=1)
        top = np.argsort(-both_scores, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(both_scores, top, axis=1)
        best_rows = np.take_along_axis(both_rows, top, axis=1)
    best_rows[~np.isfinite(best_scores)] = -1
    return best_rows


def recall(found: list[np.ndarray], truth: np.ndarray) -> float:
    """Mean share of each query's true neighbours found (queries with none left out)."""
    shares = []
    for rows, true in zip(found, truth):
        true = true[true >= 0]
        if len(true):
            shares.append(len(np.intersect1d(rows, true)) / len(true))
    return float(np.mean(shares)) if shares else 1.0


def candidate_settings(backends: list[str], rows: int) -> list[Setting]:
    """The settings to sweep for the backends an index has, cheapest first per backend."""
    out = []
    for backend in backends:
        if backend == "exact":
            out.append(Setting("exact"))
        elif backend == "graph":
            out += [Setting("graph", {"ef_search": ef}) for ef in EF_SEARCH]
        else:  # a code backend: its candidates re-ranked by the stored vectors
            out += [Setting(backend, {}, budget) for budget in RERANK_BUDGETS if budget < rows]
    return out


def sweep(search: Callable[[int, Setting], np.ndarray], queries: np.ndarray, truth: np.ndarray,
          settings: list[Setting], k: int = TUNED_K, timed: int = TIMED_QUERIES
          ) -> list[Setting]:
    """Run every setting on every query (`search(i, setting)`: the rows found for query i,
    its own row left out), recording recall@k and queries/s (best of two timed passes over
    the first `timed` queries). A backend's settings stop once one is ~exact."""
    out: list[Setting] = []
    done: set[str] = set()
    for setting in settings:
        if setting.backend in done:
            continue
        found = [search(i, setting)[:k] for i in range(len(queries))]
        seconds = []
        for _ in range(2):
            started = time.perf_counter()
            for i in range(min(timed, len(queries))):
                search(i, setting)
            seconds.append(time.perf_counter() - started)
        qps = min(timed, len(queries)) / max(min(seconds), 1e-9)
        measured = Setting(setting.backend, setting.backend_options,
                           setting.rerank_candidates, round(recall(found, truth), 4),
                           round(qps, 1))
        out.append(measured)
        if measured.recall >= NEAR_EXACT:
            done.add(setting.backend)
    return out
