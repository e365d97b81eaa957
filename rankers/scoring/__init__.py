"""Attribute scoring for the bridging rankers: ``score_items(items, attributes)``.

The backend is chosen by ``settings.PRC_SCORER_BACKEND`` ("baseline" by default; see ``backends``). Steps:

1. Drop items without text (unscored) and deduplicate texts within the slate.
2. Look each text up in the cache (in-process LRU, then the optional shared Django cache).
3. Send the misses to the backend in one call; cache every text that got at least one score.
4. Return ``{item_id: {attribute: score}}`` for the items with at least one score, scores in [0, 1].

``score_items`` never raises: a backend failure leaves the affected items unscored, and the rankers give
unscored items a neutral position.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rankers.scoring.backends import ScorerBackend, Scores, build_backend
from rankers.scoring.cache import Entry, ScoreCache, text_key

if TYPE_CHECKING:
    from rankers.plugins.base import SlateItem

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_backend: ScorerBackend | None = None
_cache: ScoreCache | None = None


def get_backend() -> ScorerBackend:
    """The configured backend, built once per process."""
    global _backend
    with _lock:
        if _backend is None:
            from django.conf import settings

            _backend = build_backend(settings.PRC_SCORER_BACKEND, settings)
        return _backend


def get_cache() -> ScoreCache:
    global _cache
    with _lock:
        if _cache is None:
            _cache = _build_cache()
        return _cache


def _build_cache() -> ScoreCache:
    from django.conf import settings

    shared = None
    if settings.PRC_SCORER_CACHE_ALIAS:
        from django.core.cache import caches

        shared = caches[settings.PRC_SCORER_CACHE_ALIAS]
    return ScoreCache(maxsize=settings.PRC_SCORER_CACHE_SIZE, shared=shared, ttl_s=settings.PRC_SCORER_CACHE_TTL_S)


def configure(backend: ScorerBackend | None = None, cache: ScoreCache | None = None) -> None:
    """Replace the process's backend and cache (tests, benchmarks); None means "rebuild from settings"."""
    global _backend, _cache
    with _lock:
        _backend, _cache = backend, cache


def warm_up() -> None:
    """Build the backend and score one text so that the first real slate does not pay for model loading."""
    get_backend().score(["warm up"], ["TOXICITY"])


def score_items(items: Sequence[SlateItem], attributes: Sequence[str]) -> dict[str, dict[str, float]]:
    """Scores in [0, 1] per item id for the requested attributes; unscorable items are left out. Never raises."""
    try:
        return _score_items(items, tuple(dict.fromkeys(attributes)))
    except Exception:
        logger.exception("attribute scoring failed; the slate stays unscored")
        return {}


def _score_items(items: Sequence[SlateItem], attributes: tuple[str, ...]) -> dict[str, dict[str, float]]:
    if not attributes:
        return {}
    backend = get_backend()
    cache = get_cache()
    texts = {item.id: item.full_text for item in items}  # title first, then body
    key_of_item = {item_id: text_key(backend.name, text) for item_id, text in texts.items() if text}
    text_of_key = {text_key(backend.name, text): text for text in texts.values() if text}

    known = cache.get_many(text_of_key, attributes)
    missing = [key for key in text_of_key if key not in known]
    if missing:
        known.update(_score_missing(backend, cache, [text_of_key[k] for k in missing], missing, attributes))

    result: dict[str, dict[str, float]] = {}
    for item_id, key in key_of_item.items():
        entry = known.get(key)
        if entry is not None:
            scores = {a: entry.scores[a] for a in attributes if a in entry.scores}
            if scores:
                result[item_id] = scores
    return result


def _score_missing(
    backend: ScorerBackend, cache: ScoreCache, texts: list[str], keys: list[str], attributes: tuple[str, ...]
) -> dict[str, Entry]:
    started = time.perf_counter()
    try:
        raw = backend.score(texts, attributes)
    except Exception:
        logger.warning("scorer backend %s failed on %d texts", backend.name, len(texts), exc_info=True)
        return {}
    if len(raw) != len(texts):
        logger.warning("scorer backend %s returned %d results for %d texts", backend.name, len(raw), len(texts))
        return {}
    fresh = {key: Entry(frozenset(attributes), _clean(scores)) for key, scores in zip(keys, raw, strict=True) if scores}
    fresh = {key: entry for key, entry in fresh.items() if entry.scores}
    cache.put_many(fresh)
    logger.debug("scored %d/%d texts in %.1f ms", len(fresh), len(texts), 1000 * (time.perf_counter() - started))
    return fresh


def _clean(scores: Scores) -> dict[str, float]:
    """Defensive: keep only finite numbers, clamped to [0, 1], whatever a backend returned."""
    clean: dict[str, float] = {}
    for name, value in scores.items():
        if isinstance(value, int | float) and math.isfinite(value):
            clean[name] = min(1.0, max(0.0, float(value)))
    return clean


__all__ = ["configure", "get_backend", "get_cache", "score_items", "warm_up"]
