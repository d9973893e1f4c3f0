"""Regenerate indexer/samples/stdlib_docs.jsonl: short real documents with a topic label.

Each document is the first paragraph of the docstring of a public function, class or method in
a fixed list of CPython standard-library modules (text under the PSF licence); its label is the
module. Run with the project's Python: `python scripts/make_sample.py`.
"""

import importlib
import inspect
import json
import re
import warnings
from pathlib import Path

MODULES = [
    "argparse", "asyncio", "base64", "bz2", "calendar", "collections", "concurrent.futures",
    "configparser", "contextlib", "copy", "csv", "datetime", "decimal", "difflib", "email",
    "enum", "fractions", "ftplib", "functools", "glob", "gzip", "hashlib", "heapq", "hmac",
    "html", "http.client", "http.server", "imaplib", "inspect", "io", "ipaddress", "itertools",
    "json", "logging", "lzma", "mailbox", "math", "mimetypes", "multiprocessing", "os",
    "pathlib", "pickle", "platform", "poplib", "pprint", "queue", "random", "re", "sched",
    "secrets", "shlex", "shutil", "signal", "smtplib", "socket", "sqlite3", "ssl", "statistics",
    "string", "struct", "subprocess", "tarfile", "tempfile", "textwrap", "threading", "time",
    "timeit", "tokenize", "traceback", "turtle", "typing", "unittest", "urllib.parse",
    "urllib.request", "uuid", "warnings", "weakref", "wave", "xml.dom.minidom",
    "xml.etree.ElementTree", "zipfile", "zlib", "ast", "bisect", "cmd", "codecs", "dataclasses",
    "dis", "doctest", "filecmp", "fnmatch", "getopt", "gettext", "locale", "numbers", "operator",
    "optparse", "pdb", "pstats", "pydoc", "reprlib", "selectors", "socketserver", "sysconfig",
    "tkinter", "tomllib", "trace", "types", "wsgiref.util", "xmlrpc.client", "xmlrpc.server",
    "zoneinfo", "asyncio.events", "asyncio.streams", "asyncio.tasks", "asyncio.locks",
    "asyncio.queues", "email.message", "email.utils", "email.headerregistry", "http.cookiejar",
    "http.cookies", "importlib.metadata", "importlib.resources", "logging.handlers", "nntplib",
    "telnetlib", "mailcap", "msilib", "ctypes", "curses", "idlelib.editor", "lib2to3.pytree",
    "unittest.mock", "urllib.robotparser", "xml.sax.saxutils", "xml.sax.handler", "zipapp",
    "json.decoder", "json.encoder", "encodings.idna", "tracemalloc", "array", "binascii",
]
OUT = Path(__file__).resolve().parent.parent / "indexer" / "samples" / "stdlib_docs.jsonl"


def first_paragraph(doc: str) -> str:
    paragraph = inspect.cleandoc(doc).split("\n\n")[0]
    return re.sub(r"\s+", " ", paragraph).strip()


def documents():
    seen = set()
    for module_name in MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        members = [(module_name, module)]
        for name, value in sorted(vars(module).items()):
            if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
                continue
            members.append((f"{module_name}.{name}", value))
            if inspect.isclass(value):
                for attr, method in sorted(vars(value).items()):
                    if not attr.startswith("_") and callable(method):
                        members.append((f"{module_name}.{name}.{attr}", method))
        for qualified, value in members:
            doc = getattr(value, "__doc__", None)
            if not isinstance(doc, str):
                continue
            text = first_paragraph(doc)
            if 30 <= len(text) <= 600 and text not in seen:
                seen.add(text)
                yield {"id": qualified, "text": text, "module": module_name.split(".")[0]}


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as handle:
        for document in documents():
            handle.write(json.dumps(document, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}")
