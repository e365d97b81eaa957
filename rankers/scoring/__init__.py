"""Attribute scoring for the bridging rankers.

Scores are computed only in scorer processes (Celery workers on ``PRC_SCORER_QUEUE``, ``rankers.scoring.worker``),
never in a web process: ``/rank`` asks ``rankers.scoring.service.scores_for`` for what the shared store holds and
queues the rest with the slate's deadline. This module is the scoring itself, as those processes run it:

1. ``get_backend()`` builds the configured backend once per process (``PRC_SCORER_BACKEND``: a backend name, or
   the dotted path of a backend class, which is how tests and third-party backends plug in).
2. ``score_texts`` sends texts to it in one call and keeps only what is valid: a list of the right length, and
   per text a mapping of finite numbers in [0, 1]. Anything else is garbage and leaves that text unscored.
3. ``score_items`` is the same for slate items with an in-process LRU in front (tests, benchmarks).

Nothing here raises on a backend failure: the texts stay unscored, and rankers give unscored items a neutral
position.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils.module_loading import import_string

from rankers.scoring.backends import ScorerBackend, build_backend
from rankers.scoring.backends.base import unit_interval
from rankers.scoring.cache import LRU, Entry, covering, text_digest

if TYPE_CHECKING:
    from rankers.plugins.base import SlateItem

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_backend: ScorerBackend | None = None
_cache: LRU[bytes] | None = None


def identity() -> str:
    """Which scorer made a score: the backend and the model it runs. Part of every cache and database key."""
    name = str(settings.PRC_SCORER_BACKEND)
    model = {
        "transformers": settings.PRC_SCORER_MODEL_DIR,
        "embedding": settings.PRC_SCORER_MODEL_DIR,
        "llm": settings.PRC_LLM_MODEL,
        "http": settings.PRC_SCORER_HTTP_URL,
    }.get(name, "")
    if name == "transformers" and settings.PRC_SCORER_RUNTIME == "onnxruntime":
        model += ":onnx"  # as TransformersBackend.name: another runtime's scores never share cache entries
    if name == "transformers" and settings.PRC_SCORER_QUANTIZE:
        model += ":int8"  # int8 scores differ slightly from the full model's: never share their cache entries
    return f"{name}:{model}" if model else name


def namespace() -> str:
    """``identity()`` shortened for Redis keys."""
    return _short_hash(identity())


@functools.lru_cache(maxsize=16)
def _short_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def make_backend() -> ScorerBackend:
    """A new backend as configured; raises if it cannot be built."""
    name = str(settings.PRC_SCORER_BACKEND)
    if "." in name:
        backend: ScorerBackend = import_string(name)()
        return backend
    return build_backend(name, settings)


def get_backend() -> ScorerBackend:
    """The configured backend, built once per process."""
    global _backend
    with _lock:
        if _backend is None:
            _backend = make_backend()
        return _backend


def get_cache() -> LRU[bytes]:
    """This process's LRU of encoded entries, keyed like Redis."""
    global _cache
    with _lock:
        if _cache is None:
            _cache = LRU(settings.PRC_SCORER_CACHE_SIZE)
        return _cache


def configure(backend: ScorerBackend | None = None, cache: LRU[bytes] | None = None) -> None:
    """Replace the process's backend and cache (tests, benchmarks); None means "rebuild from settings"."""
    global _backend, _cache
    with _lock:
        _backend, _cache = backend, cache


def load_backend(backend: ScorerBackend) -> None:
    """Load the backend's model now and score one text: raises, with the backend's own message, if it cannot."""
    load = getattr(backend, "load", None)
    if load is not None:
        load()
    [result] = backend.score(["warm up"], ["TOXICITY"])
    if result is not None and not isinstance(result, dict):
        raise TypeError(f"the backend answered {type(result).__name__} instead of a mapping of scores")


def warm_up() -> None:
    """Build the backend and score one text so that the first real batch does not pay for model loading."""
    load_backend(get_backend())


def scoring_attributes(requested: Iterable[str] = ()) -> tuple[str, ...]:
    """What a text is scored on: every attribute a registered ranker reads (plus any ``requested``), so that a
    post shown in two arms is scored once for both."""
    from rankers.plugins import all_rankers

    wanted = [a for ranker in all_rankers().values() for a in getattr(ranker, "attributes", ()) or ()]
    return tuple(sorted({*wanted, *requested}))


@dataclass
class Scored:
    """What one backend call gave: entries by text digest, and how many texts failed and why."""

    entries: dict[str, Entry] = field(default_factory=dict)
    failed: int = 0  # the backend raised: these texts stay unscored
    garbage: int = 0  # the backend answered something that is not a score: these texts stay unscored


def score_texts(backend: ScorerBackend, texts: Sequence[str], attributes: Sequence[str]) -> Scored:
    """Score ``texts`` in one backend call; never raises."""
    if not texts:
        return Scored()
    try:
        raw: Any = backend.score(list(texts), list(attributes))
    except Exception:
        logger.warning("scorer backend %s failed on %d texts", identity(), len(texts), exc_info=True)
        return Scored(failed=len(texts))
    if not isinstance(raw, list) or len(raw) != len(texts):
        logger.warning("scorer backend %s answered %r for %d texts", identity(), type(raw).__name__, len(texts))
        return Scored(garbage=len(texts))
    scored = Scored()
    asked = frozenset(attributes)
    for text, result in zip(texts, raw, strict=True):
        scores = valid_scores(result, asked)
        if scores is None:
            scored.garbage += 1
        elif scores:
            scored.entries[text_digest(text)] = Entry(asked, scores)
    return scored


def valid_scores(result: object, asked: frozenset[str]) -> dict[str, float] | None:
    """The asked-for scores in ``result``; {} when the backend could not score the text (None, or a model without
    those labels); None when ``result`` is garbage (not a mapping, or a value that is not a number in [0, 1])."""
    if result is None:
        return {}
    if not isinstance(result, dict):
        return None
    scores: dict[str, float] = {}
    for name, value in result.items():
        number = unit_interval(value)
        if number is None:
            return None
        if name in asked:
            scores[name] = number
    return scores


def score_items(items: Sequence[SlateItem], attributes: Sequence[str]) -> dict[str, dict[str, float]]:
    """Scores in [0, 1] per item id, computed in this process (tests, benchmarks, the scorer worker's own tools).
    Unscorable items are left out. Never raises."""
    wanted = tuple(dict.fromkeys(attributes))
    if not wanted:
        return {}
    try:
        backend = get_backend()
    except Exception:
        logger.exception("the scorer backend could not be built; the slate stays unscored")
        return {}
    cache = get_cache()
    digest_of = {item.id: text_digest(item.full_text) for item in items if item.full_text}
    text_of = {text_digest(item.full_text): item.full_text for item in items if item.full_text}
    known = covering({digest: Entry.decode(cache.get(digest)) for digest in text_of}, wanted)
    missing = [digest for digest in text_of if digest not in known]
    fresh = score_texts(backend, [text_of[d] for d in missing], wanted).entries
    for digest, entry in fresh.items():
        cache.put(digest, entry.encode())
    known.update(fresh)
    return scores_by_item(digest_of, known, wanted)


def scores_by_item(
    digest_of: dict[str, str], entries: dict[str, Entry], attributes: Sequence[str]
) -> dict[str, dict[str, float]]:
    """``{item_id: {attribute: score}}`` for the items whose text has at least one of ``attributes`` scored."""
    result: dict[str, dict[str, float]] = {}
    for item_id, digest in digest_of.items():
        entry = entries.get(digest)
        if entry is not None:
            scores = {a: entry.scores[a] for a in attributes if a in entry.scores}
            if scores:
                result[item_id] = scores
    return result


__all__ = [
    "Scored",
    "configure",
    "get_backend",
    "get_cache",
    "identity",
    "load_backend",
    "make_backend",
    "score_items",
    "score_texts",
    "scoring_attributes",
    "warm_up",
]
