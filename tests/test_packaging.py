"""`pip install .`: the wheel carries everything a user needs (the code, the bundled sample, the
search page, the offline API docs, the console script, the extras), and the installed copy
works on its own, away from this checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("wheel")
    source = folder / "source"  # a copy: setuptools' build/ folder stays out of the checkout
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc")
    for name in ("hashindex", "indexer"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps",
                          "--no-build-isolation", "-q", "-w", str(folder)],
                         capture_output=True, text=True, timeout=600, cwd=folder)
    assert out.returncode == 0, out.stderr[-3000:]
    (built,) = folder.glob("hashindex-*.whl")
    return built


def test_the_wheel_carries_the_package_data_and_the_extras(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for wanted in ("hashindex/__init__.py", "hashindex/app/api/index.py",
                   "indexer/samples/stdlib_docs.jsonl", "hashindex/app/serve/static/app.js",
                   "hashindex/app/serve/static/index.html"):
        assert wanted in names, wanted
    assert not any(name.startswith(("tests/", "benchmarks/")) for name in names)
    info = next(n for n in names if n.endswith(".dist-info/METADATA"))
    metadata = zipfile.ZipFile(wheel).read(info).decode()
    for extra in ("serve", "ray", "bench"):
        assert f"Provides-Extra: {extra}" in metadata
    assert "Requires-Dist: fastapi" in metadata and "extra == \"serve\"" in metadata
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "hashindex = hashindex.app.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_the_installed_copy_builds_and_searches_away_from_the_checkout(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = """
import numpy as np, hashindex, indexer.samples as samples
assert hashindex.__file__.startswith(SITE), hashindex.__file__
assert samples.__file__.startswith(SITE), samples.__file__
rng = np.random.default_rng(0)
vectors = rng.normal(size=(300, 16)).astype(np.float32)
index = hashindex.build(vectors, "idx", ids=[f"v{i}" for i in range(300)], bits=16,
                        train=hashindex.TrainConfig(epochs=3, show_progress=False))
query = vectors[7] / np.linalg.norm(vectors[7])
assert index.search(query, k=3)[0].id == "v7"
assert len(samples.bundled_sample_records()) > 1000
print("ok")
""".replace("SITE", repr(str(site)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=600,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin",
                              "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok")
