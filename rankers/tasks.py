"""Celery tasks of the rankers app. Each takes plain arguments, calls a service and owns only its retry policy."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from rankers import rollups
from rankers.scoring import rescore, worker

ROLLUP_RETRY = {"autoretry_for": (OperationalError,), "retry_backoff": True, "retry_backoff_max": 300, "max_retries": 5}


@shared_task(**ROLLUP_RETRY)
def rollup_day(day: str, study_ids: list[int] | None = None) -> int:
    """Recompute the rollups of one day (ISO date) for every study, or the given ones. Safe to run twice."""
    return rollups.rollup_day(day=dt.date.fromisoformat(day), study_ids=study_ids)


@shared_task(**ROLLUP_RETRY)
def rollup_recent_days() -> int:
    """Yesterday and today in each study's time zone; beat runs it every 15 minutes."""
    return rollups.rollup_recent_days()


@shared_task(ignore_result=True, acks_late=False, time_limit=settings.PRC_SCORER_TASK_TIME_LIMIT_S)
def score_pending() -> int:
    """Score one batch of the queued scoring jobs (sent by /rank to the scoring queue, one message per job).

    Not acknowledged late: a batch lost with its worker is not worth scoring once its deadline has passed. The
    time limit ends a hung backend by replacing the worker process.
    """
    return worker.score_batch()


@shared_task(ignore_result=True)
def rescore_missed_slates() -> int:
    """Score the texts of recently logged slates that were served before their scores arrived."""
    return rescore.rescore_missed()


# The slate log's own tasks live beside it; imported here so the worker registers them.
from rankers.tasks_slatelog import drain_slate_fallback, ensure_slate_partitions, erase_fallback_slates  # noqa: E402, F401
