"""`hashindex serve --workers N`: N uvicorn worker processes on one listening socket.

One Python process answers at most ~1 800 small queries/s here (the GIL: HTTP parsing, JSON
and the search share one core). Each worker is a whole service (index, text model, batcher,
reload watcher) with cores/N threads for its text model; the kernel deals connections to the
workers. Settings reach the workers through the environment (uvicorn starts them by import
string), and their Prometheus metrics through a shared folder that /metrics sums.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path

ENVIRONMENT = "HASHINDEX_SERVE_APP"
METRICS_PREFIX = "hashindex-metrics-"  # then the supervisor's pid: which folders are stale


def app_from_environment():
    """uvicorn's factory in each worker: the app `serve` described in the environment."""
    from hashindex.app.serve.app import ServeSettings, create_app
    from hashindex.orphans import stop_when_orphaned

    described = json.loads(os.environ[ENVIRONMENT])
    stop_when_orphaned()
    return create_app(described["index"], ServeSettings(**described["settings"]))


def worker_settings(settings, workers: int):
    """Each worker's share of the cores for its text model, and load before listening."""
    cores = max(1, os.cpu_count() or 1)
    return dataclasses.replace(settings, embed_threads=max(1, cores // workers),
                               load_before_listening=True)


def remove_stale_metrics_folders(folder: Path) -> None:
    """Remove the metrics folders of supervisors that no longer run (a kill -9 leaves its
    folder: only a supervisor that stops cleanly removes it)."""
    for path in folder.glob(f"{METRICS_PREFIX}*"):
        pid = path.name[len(METRICS_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and path.is_dir() and not process_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def run_workers(index_path: str, settings, workers: int, **uvicorn_options) -> None:
    """Serve with `workers` processes until SIGTERM/SIGINT (uvicorn's supervisor drains and
    stops them); the metrics folder is removed after."""
    import uvicorn

    remove_stale_metrics_folders(Path(tempfile.gettempdir()))
    metrics = tempfile.mkdtemp(prefix=f"{METRICS_PREFIX}{os.getpid()}-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics  # before any worker imports prometheus
    os.environ[ENVIRONMENT] = json.dumps({
        "index": str(index_path),
        "settings": dataclasses.asdict(worker_settings(settings, workers))})
    try:
        uvicorn.run("hashindex.app.serve.workers:app_from_environment", factory=True,
                    workers=workers, **uvicorn_options)
    finally:
        shutil.rmtree(metrics, ignore_errors=True)
