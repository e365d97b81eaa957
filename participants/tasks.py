"""Celery tasks of the participants app. Each calls a service or command and owns only its retry policy."""

from __future__ import annotations

from celery import shared_task
from django.core.management import call_command
from django.db import OperationalError

from participants import events, exports


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def clear_expired_sessions() -> None:
    """Delete expired sessions (signups and researcher logins); beat runs it hourly.

    By hand: ``manage.py clearsessions``.
    """
    call_command("clearsessions")


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def rollup_behaviour_recent_days() -> int:
    """Daily active minutes and event counts for yesterday and today; beat runs it every 15 minutes.

    By hand: ``manage.py rollup_behaviour --start YYYY-MM-DD --end YYYY-MM-DD [--study SLUG]``.
    """
    return events.rollup_behaviour_recent_days()


@shared_task
def ensure_event_partitions(months_ahead: int = 3) -> int:
    """The behaviour event log's monthly partitions, ahead of time; beat runs it daily. Safe to run twice."""
    return events.ensure_partitions(months_ahead)


@shared_task
def build_export(export_id: int) -> bool:
    """Write a requested export's files and zip them, with progress on the export row. Safe to run twice:
    only the run that claims the queued export builds it."""
    return exports.build_export(export_id)
