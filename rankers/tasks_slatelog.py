"""Celery tasks that keep the slate log whole; re-exported by ``rankers.tasks`` under their registered names."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError, connection
from redis.exceptions import RedisError

from participants.audit import record_audit
from participants.models import ExtensionInstall, Participant
from rankers import slatelog
from rankers.models import Slate


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


@shared_task(
    name="rankers.tasks.erase_fallback_slates",
    autoretry_for=(RedisError, OperationalError),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=None,  # until it succeeds: erasure is not optional
)
def erase_fallback_slates(public_id: str) -> int:
    """An erased participant's slates outside the withdrawal's transaction: the Redis fallback lists, and
    any slate a request in flight at withdrawal wrote after it. Audited once done; safe to run twice."""
    participant = Participant.objects.filter(public_id=public_id, erased_at__isnull=False).first()
    if participant is None:
        return 0
    token_hashes = ExtensionInstall.objects.filter(participant=participant).values_list("token_hash", flat=True)
    in_redis = slatelog.erase_fallback(public_id, set(token_hashes))
    late, _ = Slate.objects.filter(participant_id=public_id).delete()
    detail = {"fallback_slates": in_redis, "late_slates": late}
    record_audit(action="participant.erasure_completed", obj=participant, detail=detail)
    return in_redis + late
