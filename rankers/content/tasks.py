"""Celery tasks of the content pipeline: take ids, call ``services``, own only the retry policy.

Beat runs ``fetch_sources`` per connector and ``refresh_queues`` per platform (``CELERY_BEAT_SCHEDULE`` in
settings); by hand: ``manage.py fetch_content`` and ``manage.py refresh_queues``.
"""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task
from django.db import OperationalError

from rankers.content import queues, services
from rankers.content.models import ContentSource

RETRY = {"autoretry_for": (OperationalError,), "retry_backoff": True, "retry_backoff_max": 300, "max_retries": 5}


@shared_task(name="rankers.content.tasks.fetch_source", **RETRY)
def fetch_source(source_id: int, trigger: str = "schedule") -> int | None:
    """One source into the inventory; returns the run's id, or None when another run of it is in flight."""
    run = services.fetch_source(source_id=source_id, trigger=trigger)
    return run.pk if run else None


@shared_task(name="rankers.content.tasks.fetch_sources", **RETRY)
def fetch_sources(connector: str) -> int:
    """Queue one ``fetch_source`` per active source of ``connector``; returns how many were queued."""
    ids = list(ContentSource.objects.fetched_by(connector).values_list("pk", flat=True))
    for source_id in ids:
        fetch_source.delay(source_id)
    return len(ids)


@shared_task(name="rankers.content.tasks.refresh_queues", **RETRY)
def refresh_queues(platform: str) -> list[dict[str, object]]:
    """Rebuild every inserting arm's pool and its participants' queues on ``platform`` (safe to run twice)."""
    return [asdict(result) for result in queues.refresh_platform(platform)]
