"""A search's options checked against one index, once: SearchRequest, made by make_request.

Every surface (CLI, Python, HTTP) fills the same fields, and a request made for one index can
run any number of queries; `RequestCache` keeps the recent ones, so that `search(q, k=10)`
repeated pays the checks, the tuned-setting choice and the knob parsing once.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from hashindex.backends import BACKENDS, check_backend
from hashindex.errors import HashIndexError
from hashindex.filters import MetadataFilter, parse_filter
from hashindex.tuning import check_target

REQUESTS_KEPT = 64  # recent option sets' requests kept per index


@dataclass(frozen=True)
class SearchRequest:
    """Everything a search takes besides the query, checked against one index."""

    k: int = 10
    max_radius: int | None = None  # None: up to the code's bits
    rerank: bool = True  # rank by cosine when the index stores embeddings (else by code)
    backend: str = "table"
    rerank_candidates: int | None = None  # gather N candidates, rank them by cosine alone
    backend_options: dict = field(default_factory=dict)  # the backend's query knobs
    knobs: object = field(default=None, compare=False, repr=False)  # the same, parsed
    where: MetadataFilter | None = None  # only rows whose metadata pass it
    target_recall: float | None = None  # what the tuned setting was chosen for
    setting: str = ""  # that setting, described (empty: the request's own knobs)
    tuned_recall: float | None = None  # what it reached when the index was tuned
    notes: tuple[str, ...] = ()  # said with every answer (a target not met, stale tuning)

    @property
    def wanted(self) -> int:
        return max(self.k, self.rerank_candidates or 0)


@dataclass(frozen=True)
class TunedChoice:
    setting: object  # tuning.Setting, or None: the request's own knobs
    target: float | None
    notes: tuple[str, ...]


def check_integer(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise HashIndexError(f"{name} must be an integer, got {value!r}")


def make_request(index, k: int = 10, *, radius: int | None = None, rerank: bool = True,
                 backend: str | None = None, rerank_candidates: int | None = None,
                 backend_options: dict | None = None, filter: dict | None = None,
                 target_recall: float | None = None,
                 max_radius: int | None = None) -> SearchRequest:
    """A SearchRequest for `index` (a HashIndex), every field checked before anything is
    loaded or embedded (HashIndex.request documents the options). `max_radius` is the old
    name of `radius`, kept for one release."""
    if max_radius is not None:
        warnings.warn("max_radius is deprecated and will be removed in the next release; "
                      "use radius", DeprecationWarning, stacklevel=3)
        if radius is not None and radius != max_radius:
            raise HashIndexError(f"radius={radius} and max_radius={max_radius} disagree; "
                                 "give radius alone (max_radius is its old name)")
        radius = max_radius
    check_integer("k", k)
    if k < 1:
        raise HashIndexError(f"k={k} must be at least 1")
    if backend is not None:
        check_backend(backend)
    if target_recall is not None:
        target_recall = check_target(target_recall)
    if backend_options is not None and not isinstance(backend_options, dict):
        raise HashIndexError(f"backend_options must be a dict of knob: value, not a "
                             f"{type(backend_options).__name__} ({backend_options!r})")
    if radius is not None:
        check_integer("radius", radius)
        if not 0 <= radius <= index.bits:
            raise HashIndexError(f"radius={radius} is out of range: use 0 to {index.bits} "
                                 f"for this {index.bits}-bit index")
    if rerank_candidates is not None:
        check_integer("rerank_candidates", rerank_candidates)
        if rerank_candidates < 1:
            raise HashIndexError(f"rerank_candidates={rerank_candidates} must be at least 1")
        if index.vectors is None:
            raise HashIndexError(f"index {index.root} has no stored embeddings to re-rank "
                                 "with; rebuild it without --no-store-embeddings")
    tuned = tuned_setting(index, k, backend, target_recall,
                          rerank and not backend_options and rerank_candidates is None)
    notes = list(tuned.notes)
    if tuned.setting is not None:
        backend = tuned.setting.backend
        backend_options = tuned.setting.backend_options
        rerank_candidates = tuned.setting.rerank_candidates
    backend = backend or "table"
    if backend == "exact" and index.vectors is None:
        raise HashIndexError(f"index {index.root} keeps no vectors for the exact backend to "
                             "scan; use another backend, or rebuild it without "
                             "--no-store-embeddings")
    manifest = index.manifest
    stored = manifest.backend_options if backend == manifest.backend else {}
    knobs = BACKENDS[backend].query_options(stored, dict(backend_options or {}))
    where = parse_filter(filter, index.filter_columns())
    if index.vectors is None:
        notes.append("ranked by code distance: this index keeps no vectors (built with "
                     "--no-store-embeddings)")
    return SearchRequest(k, radius, bool(rerank), backend, rerank_candidates,
                         knobs.to_dict(), knobs, where, tuned.target,
                         tuned.setting.describe() if tuned.setting else "",
                         tuned.setting.recall if tuned.setting else None, tuple(notes))


def tuned_setting(index, k: int, backend: str | None, target: float | None,
                  use: bool) -> TunedChoice:
    """The tuned setting a request runs (None where it brings its own knobs, asks for a
    backend the tuning did not sweep, or the index has no tuning), and what to say."""
    tuning = index.tuning
    if tuning is None:
        note = (("this index has no tuning table (built without stored vectors or by an "
                 "older hashindex): target_recall is not applied",) if target is not None
                else ())
        return TunedChoice(None, None, note)
    target = tuning.target_recall if target is None else target
    swept = {s.backend for s in tuning.settings}
    if not use or (backend is not None and backend not in swept):
        return TunedChoice(None, None, ())
    setting, note = tuning.choose(target, backend)
    notes = [note] if note else []
    if k > tuning.k:
        notes.append(f"the setting was tuned for k={tuning.k}; for k={k} its budget is "
                     f"scaled by {k / tuning.k:g}, a recall not measured")
        setting = setting.scaled(k, tuning.k)
    if tuning.stale(index.row_count, len(index)):
        notes.append(f"the tuning is stale: {index.row_count - tuning.rows} rows were added "
                     f"since it ran (over {tuning.stale_share:.0%} of the index); "
                     "`hashindex compact` tunes it again")
    return TunedChoice(setting, target, tuple(notes))


class RequestCache:
    """Recent requests by their options (an index is a pinned build: a request made for it
    stays right for its life). Options that do not serialise (odd filter values) are made
    afresh each time."""

    def __init__(self, index, size: int = REQUESTS_KEPT):
        self.index = index
        self.size = size
        self.kept: OrderedDict[object, SearchRequest] = OrderedDict()

    def get(self, k, options: dict) -> SearchRequest:
        key = option_key(k, options)
        if key is not None:
            request = self.kept.get(key)
            if request is not None:
                return request
        request = make_request(self.index, k, **options)
        if key is not None:
            self.kept[key] = request
            if len(self.kept) > self.size:
                self.kept.popitem(last=False)
        return request


KEYED_TYPES = (str, int, float, bool, type(None))  # exactly these, nowhere subclasses


def option_key(k, options: dict):
    """A hashable key for (k, options) that tells apart whatever the checks tell apart: every
    value and dict key tagged with its exact type (1, 1.0 and True; a list and a tuple; "1"
    and 1), or None where some value is of another kind (made afresh, not cached)."""
    if type(k) is not int:
        return None
    if not options:
        return k
    try:
        return k, tagged(options)
    except TypeError:
        return None


def tagged(value):
    kind = type(value)
    if kind is dict:
        return ("dict", tuple(sorted(((tagged(key), tagged(item)) for key, item in value.items()),
                                     key=repr)))
    if kind in (list, tuple):
        return (kind.__name__, tuple(tagged(item) for item in value))
    if kind in KEYED_TYPES:
        return (kind.__name__, value)
    raise TypeError(kind)
