"""Celery tasks of the participants app. Each calls a service or command and owns only its retry policy."""

from __future__ import annotations

from celery import shared_task
from django.core.management import call_command
from django.db import OperationalError


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def clear_expired_sessions() -> None:
    """Delete expired sessions (signups and researcher logins); beat runs it hourly.

    By hand: ``manage.py clearsessions``.
    """
    call_command("clearsessions")
