"""Celery tasks of the content pipeline: take ids, call a service, own only the retry policy.

Beat runs ``fetch_sources`` per connector, ``annotate_new_posts``, and ``refresh_queues`` per platform
(``CELERY_BEAT_SCHEDULE`` in settings); by hand: ``manage.py fetch_content``, ``manage.py annotate_posts`` and
``manage.py refresh_queues``.
"""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from rankers.content import annotating, queues, services
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


# --- annotation (rankers/content/annotating.py); the batches run on the scorer workers (CELERY_TASK_ROUTES) -----

MAX_BATCHES_PER_RUN = 100  # a backlog larger than this is worked down over several beats


@shared_task(name="rankers.content.tasks.annotate_new_posts", **RETRY)
def annotate_new_posts() -> dict[str, int | str]:
    """Beat: open annotation rows for new posts, then queue the LLM and classification batches they make.

    No LLM batch is queued once the day's budget is spent (the reason is returned and logged)."""
    opened = annotating.open_annotations()
    stopped = annotating.budget_stop_reason()
    llm = 0 if stopped else min(annotating.llm_batches_waiting(), MAX_BATCHES_PER_RUN)
    for _ in range(llm):
        annotate_llm_batch.delay()
    chunks = annotating.unclassified_chunks(MAX_BATCHES_PER_RUN)
    for post_ids in chunks:
        classify_posts.delay(post_ids)
    return {"opened": opened, "llm_batches": llm, "classify_batches": len(chunks), "stopped": stopped}


@shared_task(
    name="rankers.content.tasks.annotate_llm_batch",
    rate_limit=settings.PRC_ANNOTATION_RATE_LIMIT,
    # A batch still running when its claims expire is ended: after that another worker may take its posts.
    time_limit=settings.PRC_ANNOTATION_CLAIM_TIMEOUT_S,
    **RETRY,
)
def annotate_llm_batch() -> dict[str, int | str]:
    """Claim and annotate one batch of waiting posts; a second run finds them taken or done."""
    result = annotating.annotate_llm_batch()
    return {
        "annotated": result.annotated,
        "failed": result.failed,
        "returned": result.returned,
        "stopped": result.stopped,
    }


@shared_task(name="rankers.content.tasks.classify_posts", **RETRY)
def classify_posts(post_ids: list[int]) -> int:
    """Embed and classify these posts (those the configured classifiers have not scored yet)."""
    return annotating.classify_posts(post_ids)
