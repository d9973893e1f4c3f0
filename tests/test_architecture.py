"""The package structure: imports go one way (library ← indexer ← applications), no import
cycles between folders, and the command line starts without loading the heavy libraries."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("hashindex", "indexer")
APPLICATIONS = "hashindex/app"
REGISTERED = re.compile(r"^(hashindex|indexer)(\.\w+)+:\w+$")  # "package.module:Class"


def modules() -> dict[str, Path]:
    """Dotted module name → file, for every module of both packages."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def imported(path: Path) -> set[str]:
    """Every module named by an import anywhere in the file (inside functions too), or by a
    registry line ("package.module:Class", imported by name when used)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and REGISTERED.match(node.value):  # a registry line: imported when used
            names.add(node.value.partition(":")[0])
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] in PACKAGES}


def node(module: str, known: dict[str, Path]) -> str:
    """A module's place in the folder graph: its package folder, or itself for a module at a
    package's top level (hashindex/codes.py is its own node, not the whole package)."""
    while module not in known:
        module = module.rpartition(".")[0]
    path = known[module].relative_to(ROOT)
    return str(path) if len(path.parts) == 2 else str(path.parent)


def test_the_library_never_imports_the_indexer():
    known = modules()
    offenders = [(str(path.relative_to(ROOT)), sorted(n for n in imported(path)
                                                      if n.startswith("indexer")))
                 for name, path in known.items()
                 if name.startswith("hashindex") and not str(path.relative_to(ROOT))
                 .startswith(APPLICATIONS)]
    assert [o for o in offenders if o[1]] == []


def test_no_import_cycles_between_folders():
    known = modules()
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        source = node(name, known)
        for target in imported(path):
            if target.split(".")[0] in PACKAGES and (other := node(target, known)) != source:
                edges.setdefault(source, set()).add(other)
    cycle = find_cycle(edges)
    assert cycle is None, " → ".join(cycle)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(at: str) -> list[str] | None:
        state[at] = 1
        path.append(at)
        for nxt in sorted(edges.get(at, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[at] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}}) is None


HEAVY = ("torch", "faiss", "numba", "pyarrow", "sentence_transformers", "numpy")


def heavy_after(code: str) -> list[str]:
    """The heavy libraries a fresh interpreter has imported after running `code`."""
    probe = f"import sys\n{code}\nprint(sorted(set({HEAVY!r}) & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    return ast.literal_eval(out.stdout.strip())  # a printed list of names


def test_cli_starts_without_heavy_libraries():
    """`hashindex --help` and `hashindex variants` import no torch, FAISS, numba, pyarrow or
    sentence-transformers (they cost seconds); the commands load them when they run."""
    assert heavy_after("from hashindex.app.cli import main") == []


def test_import_hashindex_loads_no_heavy_library():
    """The front door (hashindex/__init__.py) imports its names when first used."""
    assert heavy_after("import hashindex\nassert hashindex.__version__") == []
    assert "numpy" in heavy_after("import hashindex\nhashindex.build")  # the probe can fail
