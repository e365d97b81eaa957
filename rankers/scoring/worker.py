"""The scorer worker: Celery processes on ``PRC_SCORER_QUEUE`` that score queued texts in batches.

    celery -A prc_site worker -Q scoring -n scorer@%h --concurrency 2

Each ``score_pending`` message makes a worker process take one batch (``score_batch``):

1. Take the newest jobs from the Redis queue, up to ``PRC_SCORER_BATCH_TEXTS`` texts, across every web process's
   requests. Jobs whose deadline has passed, or would pass before this batch is scored at the process's recent
   pace, are dropped before they start, and counted.
2. Drop jobs for another scorer (a worker configured with a different backend or model): counted as failed.
3. Deduplicate the texts; take those Redis or PostgreSQL already hold from there.
4. Score the rest in one backend call; invalid answers are counted as garbage and leave those texts unscored.
5. Write the scores to Redis and mark the jobs done (one round trip), then upsert them into PostgreSQL.

A worker consuming the scoring queue builds and loads its backend before it takes any work; a backend that does
not load (a missing model directory, say) stops the worker with a clear message instead of leaving every slate
unscored. A batch that hangs is ended by the task's time limit (``PRC_SCORER_TASK_TIME_LIMIT_S``), which
replaces the worker process: only that batch's scores are lost.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from django.conf import settings

from rankers.scoring import get_backend, identity, load_backend, make_backend, score_texts, stats, store
from rankers.scoring.cache import Entry, text_digest

logger = logging.getLogger(__name__)


class Pace:
    """This process's recent scoring time per text (an exponentially weighted mean), to tell which jobs can
    still be scored before their deadline."""

    def __init__(self, weight: float = 0.2) -> None:
        self.weight = weight
        self.seconds_per_text = 0.0

    def observe(self, seconds: float, texts: int) -> None:
        if texts:
            sample = seconds / texts
            seen = self.seconds_per_text
            self.seconds_per_text = sample if seen == 0.0 else seen + self.weight * (sample - seen)


pace = Pace()


def score_batch(now: float | None = None) -> int:
    """Take and score one batch of queued jobs; returns how many jobs it took (0 when the queue was empty)."""
    taken = store.take_jobs(settings.PRC_SCORER_BATCH_TEXTS, seconds_per_text=pace.seconds_per_text, now=now)
    stats.count(jobs_expired=taken.expired_jobs, texts_expired=taken.expired_texts)
    mine = [job for job in taken.jobs if job.scorer == identity()]
    foreign = [job for job in taken.jobs if job.scorer != identity()]
    if foreign:
        logger.error("dropped %d jobs for scorer %r; this worker is %r", len(foreign), foreign[0].scorer, identity())
        stats.count(texts_failed=sum(len(job.texts) for job in foreign))
    if mine:
        attributes = tuple(sorted({a for job in mine for a in job.attributes}))
        texts = {text_digest(text): text for job in mine for text in job.texts}
        score_and_store(texts, attributes, done_jobs=[job.id for job in taken.jobs])
    elif foreign:
        store.write({}, done_jobs=[job.id for job in foreign])
    return len(taken.jobs)


def score_and_store(texts: dict[str, str], attributes: Sequence[str], *, done_jobs: Sequence[str] = ()) -> int:
    """Make sure every text (by digest) has scores in Redis and PostgreSQL; returns how many the backend scored."""
    started = time.perf_counter()
    known = store.read(list(texts), attributes)
    missing = [digest for digest in texts if digest not in known]
    from_db = store.load_durable(missing, attributes) if missing else {}
    missing = [digest for digest in missing if digest not in from_db]
    scoring_started = time.perf_counter()
    scored = score_texts(get_backend(), [texts[d] for d in missing], attributes)
    pace.observe(time.perf_counter() - scoring_started, len(missing))
    store.write({**from_db, **scored.entries}, done_jobs=done_jobs)
    _save(scored.entries)
    stats.count(
        batches=1,
        texts_scored=len(scored.entries),
        texts_from_db=len(from_db),
        texts_failed=scored.failed,
        texts_garbage=scored.garbage,
        scoring_ms=round((time.perf_counter() - started) * 1000),
    )
    return len(scored.entries)


def _save(entries: dict[str, Entry]) -> None:
    if not entries:
        return
    try:
        store.save_durable(entries)
    except Exception:  # Redis has them; the rescoring task will write them again if they expire there first
        logger.exception("%d scores not saved to PostgreSQL", len(entries))


def consumes_scoring_queue(worker: Any) -> bool:
    queues = worker.app.amqp.queues.consume_from or {}
    return settings.PRC_SCORER_QUEUE in queues


# Set in a scorer worker's main process before it forks its children.
_scorer_worker = False


def refuse_to_start_without_a_backend(sender: str, instance: Any, **kwargs: Any) -> None:
    """A scorer worker checks its backend before it consumes anything; other workers do not load models."""
    global _scorer_worker
    if not consumes_scoring_queue(instance):
        return
    _scorer_worker = True
    if settings.PRC_SCORER_NICE:
        # On a machine shared with web processes, the kernel gives them the CPU first: past capacity the
        # scorers fall behind (scores are shed), never the answers.
        os.nice(settings.PRC_SCORER_NICE)
    try:
        backend = make_backend()
        load_backend(backend)
    except Exception as error:
        message = (
            f"scorer backend {identity()!r} failed to load: {error}. "
            "Fix PRC_SCORER_BACKEND and its settings (see docs/rankers.md); this scorer worker will not start."
        )
        logger.critical(message)
        print(message, file=sys.stderr, flush=True)
        raise SystemExit(3) from error
    logger.info("scorer worker ready: backend %s", identity())


def load_backend_in_each_process(**kwargs: Any) -> None:
    """Each worker process builds its own backend (models do not survive a fork well) before its first batch."""
    if _scorer_worker:
        try:
            load_backend(get_backend())
        except Exception:
            logger.exception("scorer backend %s failed to load in a worker process", identity())


def connect_signals() -> None:
    """Called from ``RankersConfig.ready``."""
    from celery.signals import celeryd_after_setup, worker_process_init

    celeryd_after_setup.connect(refuse_to_start_without_a_backend)
    worker_process_init.connect(load_backend_in_each_process)
