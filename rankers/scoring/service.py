"""The web process's side of scoring: ask the shared store, queue what is missing, rank with what has arrived.

``scores_for(items, attributes, wait_s=...)`` runs on the event loop and never runs model code:

1. Texts (title, then body) of items with text are hashed; the process's LRU answers the posts it has seen.
2. One MGET asks Redis for the rest (scores any web process's slate caused, or background rescoring).
3. What is still missing becomes jobs of at most ``PRC_SCORER_JOB_TEXTS`` texts (so that several scorer
   processes can score one slate at once), with the slate's absolute deadline (now + ``wait_s``), admitted
   together only while fewer than ``PRC_SCORER_MAX_QUEUED_JOBS`` live jobs wait (refused work is counted, and
   the slate goes on with what the caches had). Each admitted job wakes a scorer worker through the
   ``PRC_SCORER_QUEUE`` queue.
4. Until the deadline, Redis is polled (every ``PRC_SCORER_POLL_MS`` at first, then more rarely) for the count
   workers keep of the slate's jobs they have finished (written what they could, or dropped as too late); then
   one MGET reads the scores that have arrived. Workers publish scores as they go, so a slate whose texts could
   not all be scored in time is ranked on those that were.
5. The answer is what has arrived. Any Redis error leaves the remaining items unscored: scoring can cost a slate
   its treatment, never its time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from django.conf import settings

from prc_site.lib import forks
from rankers.scoring import get_cache, scores_by_item, scoring_attributes, stats, store
from rankers.scoring.cache import Entry, covering, text_digest

if TYPE_CHECKING:
    from rankers.plugins.base import SlateItem

logger = logging.getLogger(__name__)

# Publishing the wake-up message is a blocking Redis write in Celery's client: one thread keeps it off the loop.
_PUBLISHER = forks.ThreadPool(max_workers=1, thread_name_prefix="scoring-enqueue")


async def scores_for(
    items: Sequence[SlateItem], attributes: Sequence[str], *, wait_s: float
) -> dict[str, dict[str, float]]:
    """Scores in [0, 1] per item id, as many as arrive within ``wait_s`` seconds. Never raises."""
    wanted = tuple(dict.fromkeys(attributes))
    digest_of = {item.id: text_digest(item.full_text) for item in items if item.full_text}
    if not wanted or not digest_of:
        return {}
    texts = {digest_of[item.id]: item.full_text for item in items if item.id in digest_of}
    found: dict[str, Entry] = {}
    events = {"texts_cached": 0}
    try:
        await _gather(texts, wanted, found, events, deadline=time.monotonic() + wait_s, wait_s=wait_s)
    except Exception:
        logger.warning("scores could not be read or queued; %d texts stay unscored", len(texts) - len(found))
    result = scores_by_item(digest_of, found, wanted)
    scored = sum(1 for scores in result.values() if len(scores) == len(wanted))
    await stats.acount(items_wanted=len(digest_of), items_scored=scored, **events)
    return result


async def _gather(
    texts: dict[str, str],
    wanted: tuple[str, ...],
    found: dict[str, Entry],
    events: dict[str, int],
    *,
    deadline: float,
    wait_s: float,
) -> None:
    """Fill ``found`` (by digest) from the caches, then from the job's results until ``deadline``."""
    found.update(_remembered(texts, wanted))
    missing = [digest for digest in texts if digest not in found]
    if missing:
        shared = _remember(await store.aread(missing), wanted)
        found.update(shared)
        missing = [digest for digest in missing if digest not in shared]
    events["texts_cached"] = len(found)
    if not missing or wait_s <= 0:
        return
    attributes, until = scoring_attributes(wanted), time.time() + wait_s
    parts = store.split_texts([texts[d] for d in missing], settings.PRC_SCORER_JOB_TEXTS)
    slate = store.new_id()
    jobs = [store.Job(texts=part, attributes=attributes, deadline=until, slate=slate) for part in parts]
    admitted, expired_jobs, expired_texts = await store.aenqueue(*jobs)
    events.update(jobs_expired=expired_jobs, texts_expired=expired_texts)
    if not admitted:
        events.update(jobs_refused=len(jobs), texts_refused=len(missing))
        return
    events["jobs_admitted"] = len(jobs)
    _wake_scorers(len(jobs))
    await _await_jobs(slate, len(jobs), missing, wanted, found, deadline)


async def _await_jobs(
    slate: str, jobs: int, missing: list[str], wanted: tuple[str, ...], found: dict[str, Entry], deadline: float
) -> None:
    """Wait until the slate's jobs are done or the deadline comes, then read their scores. The wait polls one
    small key, more rarely as it goes on (``PRC_SCORER_POLL_MS`` at first, at most 50 ms), so that a process with
    many slates waiting spends little on it."""
    poll_s = settings.PRC_SCORER_POLL_MS / 1000
    while (remaining := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(poll_s, remaining))
        poll_s = min(poll_s * 1.5, 0.05)
        if await store.adone(slate, jobs):
            break
    found.update(_remember(await store.aread(missing), wanted))


def prepare() -> None:
    """Load Celery's task registry and connect to the broker now (a web process's start), so that the first
    slate's wake-up message does not spend its deadline importing every app's tasks under the interpreter lock."""
    from rankers.tasks import score_pending  # rankers.tasks imports the rollups, which import the ranking path

    app = score_pending.app
    app.loader.import_default_modules()
    app.finalize(auto=True)
    with app.producer_or_acquire() as producer:
        producer.connection.ensure_connection(max_retries=1)


def _remembered(digests: Iterable[str], wanted: Sequence[str]) -> dict[str, Entry]:
    """What this process's LRU holds for these texts, under this scorer (its key is Redis's)."""
    lru = get_cache()
    return covering({digest: Entry.decode(lru.get(store.score_key(digest))) for digest in digests}, wanted)


def _remember(raw: dict[str, bytes], wanted: Sequence[str]) -> dict[str, Entry]:
    """Keep what Redis gave (encoded) in the LRU; return the entries that have every wanted attribute."""
    lru = get_cache()
    for digest, value in raw.items():
        lru.put(store.score_key(digest), value)
    return covering({digest: Entry.decode(value) for digest, value in raw.items()}, wanted)


def _wake_scorers(n: int) -> None:
    """Send ``n`` ``score_pending`` messages to the scoring queue (one per job); the jobs themselves wait in
    Redis."""
    future = _PUBLISHER.submit(_publish, n)
    future.add_done_callback(_log_publish_failure)


def _publish(n: int) -> None:
    from rankers.tasks import score_pending  # rankers.tasks imports the rollups, which import the ranking path

    for _ in range(n):
        # No time limit in the message: the worker's own PRC_SCORER_TASK_TIME_LIMIT_S applies.
        score_pending.apply_async(queue=settings.PRC_SCORER_QUEUE, time_limit=None)


def _log_publish_failure(future: object) -> None:
    error = future.exception()  # type: ignore[attr-defined]
    if error is not None:
        logger.warning("could not wake a scorer worker: %s", error)
