"""Celery tasks that keep the slate log whole; re-exported by ``rankers.tasks`` under their registered names."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError, connection

from rankers import slatelog


@shared_task(
    name="rankers.tasks.drain_slate_fallback",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def drain_slate_fallback(limit: int = 5000) -> int:
    """Move slates that PostgreSQL refused at serving time from Redis into the log. Safe to run twice."""
    return slatelog.drain_fallback(limit=limit)


@shared_task(name="rankers.tasks.ensure_slate_partitions")
def ensure_slate_partitions(months_ahead: int = 3) -> int:
    """Create the slate log's monthly partitions ahead of time; returns how many were new."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT rankers_ensure_slate_partitions(%s)", [months_ahead])
        row = cursor.fetchone()
    return int(row[0]) if row else 0
