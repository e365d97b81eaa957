"""Background rescoring: score the texts of logged slates that were served before their scores arrived.

A slate whose ranker reads attributes and had fewer items scored than it showed (the deadline passed, the queue
was full, a scorer failed) leaves its texts unscored for the next participant who sees the same post. This task
scores them, so that next slate finds them in the shared cache:

1. Read the slates logged since the last run (at most ``PRC_RESCORE_WINDOW_S`` back) with ``n_scored`` below
   their item count, and the stored content of their items.
2. Keep the texts (title, then body, as the rankers read them) that have no scores yet in PostgreSQL.
3. Score them in batches of ``PRC_SCORER_BATCH_TEXTS``, taking any live job waiting in the queue first, since
   live slates have a deadline and these do not; stop after ``PRC_RESCORE_MAX_TEXTS``.

Beat runs it every five minutes on the scoring queue; ``manage.py rescore_slates`` runs it by hand.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from rankers.models import ContentItem, Slate, TextScore
from rankers.plugins.base import SlateItem
from rankers.scoring import identity, scoring_attributes, stats, store, worker
from rankers.scoring.cache import text_digest

logger = logging.getLogger(__name__)


def watermark_key() -> str:
    return f"{store.prefix()}:rescore:since"


def rescore_missed(*, since: dt.datetime | None = None, max_texts: int | None = None) -> int:
    """Score the unscored texts of slates served since ``since`` (default: the last run); returns how many."""
    now = timezone.now()
    start = since or _last_run(now)
    limit = settings.PRC_RESCORE_MAX_TEXTS if max_texts is None else max_texts
    texts = unscored_texts(start, now, limit)
    attributes = scoring_attributes()
    done = 0
    for batch in _chunks(texts, settings.PRC_SCORER_BATCH_TEXTS):
        while store.queued_jobs() and worker.score_batch():
            pass  # live slates first
        done += worker.score_and_store(batch, attributes)
    stats.count(texts_rescored=done)
    if since is None and len(texts) < limit:
        # Slates are written during their hold, so the last minute's may not all be in the log yet.
        store.client().set(watermark_key(), (now - dt.timedelta(minutes=1)).isoformat())
    logger.info("rescored %d of %d unscored texts of slates since %s", done, len(texts), start.isoformat())
    return done


def unscored_texts(start: dt.datetime, end: dt.datetime, limit: int) -> dict[str, str]:
    """Texts (by digest) of under-scored slates served in ``[start, end)`` that PostgreSQL has no scores for."""
    slates = (
        Slate.objects.served_between(start, end)
        .filter(n_scored__isnull=False, n_scored__lt=F("n_items"))
        .values_list("platform", "original_hashes")
    )
    hashes: dict[str, set[str]] = {}
    for platform, slate_hashes in slates.iterator(chunk_size=500):
        hashes.setdefault(platform, set()).update(slate_hashes)
    texts: dict[str, str] = {}
    for platform, content_hashes in hashes.items():
        for title, body in _contents(platform, content_hashes):
            text = SlateItem(id="", text=body, title=title).full_text
            if text:
                texts[text_digest(text)] = text
    stored = TextScore.objects.of_scorer(identity()).filter(text_hash__in=list(texts))
    scored = set(stored.values_list("text_hash", flat=True))
    unscored = {digest: text for digest, text in texts.items() if digest not in scored}
    return dict(list(unscored.items())[:limit])


def _contents(platform: str, digests: set[str]) -> Iterator[tuple[str, str]]:
    rows = ContentItem.objects.filter(platform=platform, text_hash__in=list(digests)).values_list("title", "text")
    yield from rows.iterator(chunk_size=1000)


def _last_run(now: dt.datetime) -> dt.datetime:
    earliest = now - dt.timedelta(seconds=settings.PRC_RESCORE_WINDOW_S)
    try:
        raw = store.client().get(watermark_key())
    except Exception:
        raw = None
    last = dt.datetime.fromisoformat(raw.decode() if isinstance(raw, bytes) else raw) if raw else earliest
    return max(last, earliest)


def _chunks(texts: dict[str, str], size: int) -> Iterator[dict[str, str]]:
    items = list(texts.items())
    for start in range(0, len(items), max(1, size)):
        yield dict(items[start : start + size])
