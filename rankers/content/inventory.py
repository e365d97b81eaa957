"""The candidate inventory as the ranking path reads it: loaded before an inserting ranker runs, never a query
per post, never model work on the web process.

1. The global pool of the arm's ranker on the platform (``CandidatePool``, rebuilt by the queue refresh) is
   held in each web process. Every ``PRC_CONTENT_POOL_CACHE_S`` one background read asks PostgreSQL for the
   pool's build time only; the pool itself is read again only when it was rebuilt (a few times a day), as text,
   and decoded on a thread of its own, not on the event loop that times every request's hold. An expired pool
   keeps serving meanwhile, so only a process's first requests wait (and one that gives up leaves the read
   running for the next).
2. Per request, one query on the ranking path's connection pool reads the participant's queue
   (``ParticipantQueue``: candidate ids in order) and the candidates they were shown within the arm's shown
   window (the ``added_ids`` of their slates that were not prefetches: a prefetched slate may never be seen).
3. ``candidates_for`` resolves the queue against the pool; a participant without a queue (or whose queued
   posts have all left the pool) gets the pool's own order.

Any failure or a read past ``PRC_CONTENT_LOAD_TIMEOUT_S`` raises ``InventoryUnavailable``: the ranking path
then answers with the original order (fallback ``candidates_unavailable``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.conf import settings
from psycopg.rows import dict_row

from prc_site.lib import forks
from prc_site.lib.asyncdb import loop_pool, within
from rankers.plugins.base import Candidate

logger = logging.getLogger(__name__)

CANDIDATE_ID_PREFIX = "prc-"


class InventoryUnavailable(Exception):
    """The pool or the participant's queue could not be read in time."""


@dataclass(frozen=True)
class Pool:
    candidates: tuple[Candidate, ...] = ()  # every post a queue may name
    default: tuple[Candidate, ...] = ()  # the non-personalized order
    newest_post_at: dt.datetime | None = None
    built_at: dt.datetime | None = None
    by_id: Mapping[str, Candidate] = field(default_factory=dict)


EMPTY_POOL = Pool()


@dataclass(frozen=True)
class Loaded:
    """What an inserting ranker's context gets."""

    candidates: tuple[Candidate, ...]
    shown: frozenset[str]
    newest_at: dt.datetime | None


def candidate_id(post_pk: int) -> str:
    """The id an inserted post carries in the feed and the slate log."""
    return f"{CANDIDATE_ID_PREFIX}{post_pk}"


# --- candidates as JSON rows (the pool's storage) ---------------------------------------------------------


def candidate_row(candidate: Candidate) -> dict[str, Any]:
    return {
        "id": candidate.id,
        "url": candidate.url,
        "source_id": candidate.source_id,
        "lean": candidate.lean,
        "posted_at": candidate.posted_at.isoformat() if candidate.posted_at else None,
        "post_id": candidate.post_id,
        "annotation_version": candidate.annotation_version,
        "civic": candidate.civic,
        "approval_republican": candidate.approval_republican,
        "approval_democrat": candidate.approval_democrat,
        "national_interest": candidate.national_interest,
        "political_orientation": candidate.political_orientation,
        "ideologically_surprising": candidate.ideologically_surprising,
        "quality": dict(candidate.quality),
        "score": candidate.score,
    }


def candidate_from_row(row: Mapping[str, Any]) -> Candidate:
    posted_at = row.get("posted_at")
    return Candidate(
        id=row["id"],
        url=row["url"],
        source_id=int(row["source_id"]),
        lean=row.get("lean") or "",
        posted_at=dt.datetime.fromisoformat(posted_at) if posted_at else None,
        post_id=row.get("post_id") or "",
        annotation_version=row.get("annotation_version") or "",
        civic=row.get("civic"),
        approval_republican=row.get("approval_republican"),
        approval_democrat=row.get("approval_democrat"),
        national_interest=row.get("national_interest"),
        political_orientation=row.get("political_orientation"),
        ideologically_surprising=row.get("ideologically_surprising"),
        quality=row.get("quality") or {},
        score=float(row.get("score") or 0.0),
    )


def pool_from_rows(
    rows: Sequence[Mapping[str, Any]],
    default_ids: Sequence[str],
    *,
    newest_post_at: dt.datetime | None,
    built_at: dt.datetime | None,
) -> Pool:
    candidates = tuple(candidate_from_row(row) for row in rows)
    by_id = {c.id: c for c in candidates}
    default = tuple(by_id[i] for i in default_ids if i in by_id)
    return Pool(candidates, default, newest_post_at, built_at, by_id)


def candidates_for(pool: Pool, queue_ids: Sequence[str] | None) -> tuple[Candidate, ...]:
    """Step 3: the queue's candidates still in the pool, in queue order; the pool's default order without any."""
    if queue_ids:
        queued = tuple(pool.by_id[i] for i in queue_ids if i in pool.by_id)
        if queued:
            return queued
    return pool.default


# --- reading them on the ranking path ---------------------------------------------------------------------

# The candidates as JSON text: decoded off the event loop (``decode_pool``), not by the driver on it.
POOL_SQL = """
SELECT candidates::text AS candidates, default_ids, newest_post_at, built_at FROM rankers_candidatepool
WHERE ranker_key = %s AND platform = %s
"""
POOL_BUILT_SQL = "SELECT built_at FROM rankers_candidatepool WHERE ranker_key = %s AND platform = %s"
# The queue and the shown ids in one round trip; the slate index (participant_id, served_at) bounds the scan.
QUEUE_SQL = """
SELECT (SELECT q.candidate_ids FROM rankers_participantqueue q
        WHERE q.participant_id = %(participant)s AND q.ranker_key = %(ranker)s AND q.platform = %(platform)s
       ) AS queue,
       ARRAY(SELECT DISTINCT a FROM rankers_slate s CROSS JOIN LATERAL unnest(s.added_ids) AS a
             WHERE s.participant_id = %(participant)s AND s.served_at >= %(since)s AND NOT s.prefetch
               AND a LIKE 'prc-%%') AS shown
"""

_pools: dict[tuple[str, str], tuple[float, Pool]] = {}
# Decoding 2,000 candidates takes tens of ms of Python: on the event loop it would delay every hold that long.
_DECODER = forks.ThreadPool(max_workers=1, thread_name_prefix="pool-decode")
_refreshing: dict[tuple[str, str], asyncio.Future[Pool]] = {}


async def load(
    *, ranker_key: str, platform: str, participant_id: str, now: dt.datetime, shown_window: dt.timedelta
) -> Loaded:
    """Steps 1-3 within ``PRC_CONTENT_LOAD_TIMEOUT_S``; ``InventoryUnavailable`` on any failure."""
    try:
        return await within(
            _load(ranker_key, platform, participant_id, now - shown_window), settings.PRC_CONTENT_LOAD_TIMEOUT_S
        )
    except Exception as exc:
        raise InventoryUnavailable(f"{type(exc).__name__}: {exc}") from exc


async def _load(ranker_key: str, platform: str, participant_id: str, since: dt.datetime) -> Loaded:
    pool_read = asyncio.ensure_future(pool_for(ranker_key, platform))
    params = {"participant": participant_id, "ranker": ranker_key, "platform": platform, "since": since}
    async with (
        loop_pool(settings.RANK_DB_POOL_SIZE).connection() as conn,
        conn.cursor(row_factory=dict_row) as cursor,
    ):
        await cursor.execute(QUEUE_SQL, params)
        row = await cursor.fetchone()
    pool = await pool_read
    queue = row["queue"] if row else None
    shown = frozenset(row["shown"] or ()) if row else frozenset()
    return Loaded(candidates_for(pool, queue), shown, pool.newest_post_at)


async def pool_for(ranker_key: str, platform: str) -> Pool:
    """Step 1: this process's copy of the pool; an expired copy is served while one background read renews it.

    The read is a task of its own: a request that gives up waiting (its deadline) does not cancel it, so the
    copy arrives for the next request however slow the first read was.
    """
    key = (ranker_key, platform)
    cached = _pools.get(key)
    if cached is not None and time.monotonic() - cached[0] <= settings.PRC_CONTENT_POOL_CACHE_S:
        return cached[1]
    task = _refreshing.get(key)
    if task is None or task.get_loop() is not asyncio.get_running_loop():
        task = asyncio.ensure_future(_read_pool(key, cached[1] if cached is not None else None))
        _refreshing[key] = task
        task.add_done_callback(lambda done: _refreshed(key, done))
    if cached is not None:
        return cached[1]
    return await asyncio.shield(task)


def _refreshed(key: tuple[str, str], task: asyncio.Future[Pool]) -> None:
    if _refreshing.get(key) is task:
        del _refreshing[key]
    if not task.cancelled() and task.exception() is not None:
        logger.warning("reading the %s pool on %s failed: %s", *key, task.exception())


async def _read_pool(key: tuple[str, str], held: Pool | None) -> Pool:
    """The pool as stored now: ``held`` itself if it has not been rebuilt since (one small query)."""
    async with (
        loop_pool(settings.RANK_DB_POOL_SIZE).connection() as conn,
        conn.cursor(row_factory=dict_row) as cursor,
    ):
        if held is not None and held.built_at is not None:
            await cursor.execute(POOL_BUILT_SQL, key)
            built = await cursor.fetchone()
            if built is not None and built["built_at"] == held.built_at:
                _pools[key] = (time.monotonic(), held)
                return held
        await cursor.execute(POOL_SQL, key)
        row = await cursor.fetchone()
    pool = await asyncio.get_running_loop().run_in_executor(_DECODER, decode_pool, row) if row else EMPTY_POOL
    _pools[key] = (time.monotonic(), pool)
    return pool


def decode_pool(row: Mapping[str, Any]) -> Pool:
    """A row of ``POOL_SQL`` as a ``Pool``."""
    return pool_from_rows(
        orjson.loads(row["candidates"]),
        row["default_ids"],
        newest_post_at=row["newest_post_at"],
        built_at=row["built_at"],
    )


def forget_pools() -> None:
    """Drop this process's copies (tests, and after a refresh run in the same process)."""
    _pools.clear()
    _refreshing.clear()
