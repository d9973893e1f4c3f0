"""`hashindex serve` as a child process on a free loopback port: started, waited on until
/ready answers 200, stopped with SIGTERM (killed if it does not exit). One home for what the
tests and the load benchmark both need from a real server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A port nobody is listening on (now)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class ServeProcess:
    """A context manager: `with ServeProcess(index, log) as server: server.url`. The output is
    appended to `log` (a pipe nobody reads could fill and stall the server; a restart keeps a
    crash's log)."""

    def __init__(self, index: str | Path, log: str | Path, args=(), *, ready_s: float = 120,
                 stop_s: float = 30, host: str = LOOPBACK):
        self.index, self.log, self.args = Path(index), Path(log), args
        self.ready_s, self.stop_s = ready_s, stop_s
        self.host = host
        self.port = free_port(host)
        self.url = f"http://{host}:{self.port}"
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "hashindex.app.cli", "serve", str(self.index),
                "--host", self.host, "--port", str(self.port), *self.args]

    def get(self, path: str, timeout_s: float = 5) -> tuple[int, bytes]:
        """(status, body) of a GET on the server."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout_s) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> ServeProcess:
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
        deadline = time.monotonic() + self.ready_s
        while True:
            try:
                if self.get("/ready", timeout_s=2)[0] == 200:
                    return self
            except OSError:  # not listening yet
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"hashindex serve was not ready in {self.ready_s:.0f} s "
                                   f"(exit {self.process.returncode}):\n"
                                   f"{self.log.read_text()[-4000:]}")
            time.sleep(0.2)

    def __exit__(self, *_) -> None:
        process = self.process
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=self.stop_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=self.stop_s)
