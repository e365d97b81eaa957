"""Periodic survey jobs (declared in ``settings.CELERY_BEAT_SCHEDULE``; each has a management command)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from surveys import messaging


@shared_task(name="surveys.tasks.run_survey_schedule")
def run_survey_schedule() -> dict[str, int]:
    """Invite, expire and remind (``manage.py run_survey_schedule``); safe to run twice at once."""
    return messaging.run_schedule(at=timezone.now())


@shared_task(name="surveys.tasks.send_monthly_updates")
def send_monthly_updates() -> dict[str, int]:
    """Monthly update emails (``manage.py send_monthly_updates``); one per participant and month."""
    return messaging.send_monthly_updates(at=timezone.now())
