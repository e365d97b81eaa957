"""Periodic survey jobs (declared in ``settings.CELERY_BEAT_SCHEDULE``; each has a management command)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from participants.models import Study
from surveys import effects, messaging


@shared_task(name="surveys.tasks.run_survey_schedule")
def run_survey_schedule() -> dict[str, int]:
    """Invite, expire and remind (``manage.py run_survey_schedule``); safe to run twice at once."""
    return messaging.run_schedule(at=timezone.now())


@shared_task(name="surveys.tasks.send_monthly_updates")
def send_monthly_updates() -> dict[str, int]:
    """Monthly update emails (``manage.py send_monthly_updates``); one per participant and month."""
    return messaging.send_monthly_updates(at=timezone.now())


@shared_task(name="surveys.tasks.compute_effects")
def compute_effects() -> dict[str, str]:
    """Every live or closed study's effect estimates, nightly (``manage.py compute_effects``).

    A study whose estimates are being computed already is skipped, so two runs at once are harmless.
    """
    statuses = (*Study.SIGNUP_STATUSES, Study.Status.CLOSED)
    outcome = {}
    for study in Study.objects.filter(status__in=statuses).order_by("pk"):
        try:
            outcome[study.slug] = effects.run_effects(study=study).status
        except effects.AlreadyRunning:
            outcome[study.slug] = "already running"
    return outcome


@shared_task(name="surveys.tasks.compute_study_effects")
def compute_study_effects(study_id: int) -> str:
    """One study's estimates, queued from the effects page; skipped while another run of it is going."""
    study = Study.objects.get(pk=study_id)
    try:
        return effects.run_effects(study=study).status
    except effects.AlreadyRunning:
        return "already running"
