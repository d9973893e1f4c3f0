"""hashindex: semantic hashing retrieval with binary-code autoencoders.

The front door (hashindex/app/api/), imported when first used, so that `import hashindex`
costs no numpy, torch or FAISS:

    import hashindex
    index = hashindex.build(["first text", "second text"], "my-index")
    index.search("a query", k=5).to_pandas()
    hashindex.open("my-index").search(["many", "queries"], k=10).ids

The library below it: codes.py (bit codes), models/ (variants, their options, the registry),
training.py, encoding.py, model_io.py, embedding/ (text model and cache), store/ (the index
directory format), table/ (the hash table and its search), backends/ (search backends),
engine.py (queries), metrics.py, baselines/. app/ holds the applications (the command line,
the service, this front door), the only modules that also use the `indexer` package.
README.md, "What is inside", has the map.
"""

from hashindex.version import __version__

# name → "module:attribute", imported on first use (PEP 562)
FRONT_DOOR = {
    "build": "hashindex.app.api.index:build",
    "open": "hashindex.app.api.index:open",
    "Index": "hashindex.app.api.index:Index",
    "Client": "hashindex.app.api.client:Client",
    "Results": "hashindex.app.api.results:Results",
    "BatchResults": "hashindex.app.api.results:BatchResults",
    "Like": "hashindex.results:Like",
    "HashIndexError": "hashindex.errors:HashIndexError",
    "TrainConfig": "hashindex.training:TrainConfig",
}

__all__ = ["__version__", *FRONT_DOOR]


def __getattr__(name: str):
    target = FRONT_DOOR.get(name)
    if target is None:
        raise AttributeError(f"module 'hashindex' has no attribute {name!r}")
    from importlib import import_module

    module, _, attribute = target.partition(":")
    value = getattr(import_module(module), attribute)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *FRONT_DOOR})
