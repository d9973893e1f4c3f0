"""HASHINDEX_TEXT_MODEL: another text model in place of the sentence-transformers one.

Set to `module:attribute` (an importable module and a callable in it), every text model this
package makes (a build's, an add's, a query's, the service's, a pool worker's) is
`attribute(model, **settings)`, called with what `Embedder(model, **settings)` is given, and
must offer what an Embedder offers: `name`, `dimension`, `embed(texts)` (unit-norm float32 rows)
and, for the sequence variants, `embed_tokens(texts, max_tokens)`. Unset (normal use), Embedder
is Embedder. The tests name a fake model with it (tests/conftest.py: fake_text_model).

It is read from the environment only, never from an index, a flag or a request: whoever sets it
already chooses which Python code runs, as PYTHONPATH does.
"""

from __future__ import annotations

import importlib
import os

from hashindex.errors import HashIndexError

TEXT_MODEL_ENV = "HASHINDEX_TEXT_MODEL"


def text_model_factory():
    """The callable HASHINDEX_TEXT_MODEL names, or None when it is unset or empty."""
    named = os.environ.get(TEXT_MODEL_ENV, "").strip()
    if not named:
        return None
    module, _, attribute = named.partition(":")
    try:
        found = getattr(importlib.import_module(module), attribute) if attribute else None
    except (ImportError, AttributeError, ValueError) as error:
        raise HashIndexError(f"{TEXT_MODEL_ENV}={named!r}: cannot load it ({error}); set it to "
                             "module:attribute, a text-model factory, or unset it") from None
    if not callable(found):
        raise HashIndexError(f"{TEXT_MODEL_ENV}={named!r} names no callable; set it to "
                             "module:attribute, a text-model factory, or unset it")
    return found


class TextModelFactory(type):
    """Embedder's metaclass: `Embedder(...)` (and so `Embedder.from_spec(...)`) returns what
    HASHINDEX_TEXT_MODEL's factory makes of the same arguments, when it is set. A subclass of
    Embedder (a factory may be one) is made as it is."""

    def __call__(cls, *args, **kwargs):
        subclass = any(isinstance(base, TextModelFactory) for base in cls.__bases__)
        factory = None if subclass else text_model_factory()
        if factory is None or factory is cls:
            return super().__call__(*args, **kwargs)
        return factory(*args, **kwargs)
