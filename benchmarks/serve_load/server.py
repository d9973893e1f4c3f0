"""The service under load: `hashindex serve INDEX` on a free loopback port, its CPU time read
from /proc and its text model's batches from /metrics."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from benchmarks.serve_load import HOST
from hashindex.app.serve.process import ServeProcess

CLK_TCK = os.sysconf("SC_CLK_TCK")


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

