"""Measuring for benchmark reports: a timer, peak memory and the machine record. Shared by
`hashindex bench` and the scripts in benchmarks/, so every report says the same things."""

from __future__ import annotations

import os
import platform
import resource
import sys
import time

import numpy as np


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine_record() -> str:
    import faiss
    import torch

    return (f"{platform.machine()}, {os.cpu_count()} CPU cores, "
            f"Python {platform.python_version()}, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"faiss {faiss.__version__}, numpy {np.__version__}; command: "
            f"`{' '.join([os.path.basename(sys.executable)] + sys.argv)}`")
