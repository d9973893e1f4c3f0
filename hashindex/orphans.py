"""A worker process that stops itself once its parent is gone.

A parent killed with SIGKILL cannot stop its children: a serve worker would go on serving the
port unsupervised, and an embedding worker would wait forever for work, holding its model
(~0.7 GB). Each such worker watches its parent and, once it is gone, sends itself SIGTERM,
so it stops the way a supervisor's SIGTERM would stop it (uvicorn drains requests in flight;
a process without a handler just ends).
"""

from __future__ import annotations

import os
import signal
import threading
import time


def stop_when_orphaned(interval_s: float = 1.0) -> None:
    """Watch the parent from a daemon thread; SIGTERM this process once it has gone."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(interval_s)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
