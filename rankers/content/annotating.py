"""Annotating the inventory: which posts wait, who takes them, what is stored, and what it cost. Safe to run twice.

LLM annotation (``annotate_llm_batch``) steps:

1. ``open_annotations`` gives every recent post of an active source an empty ``PostAnnotation`` row, waiting for
   the LLM (posts first seen more than ``PRC_ANNOTATION_MAX_AGE_H`` ago are never worth a call).
2. Stop, with the reason, when today's annotation spending has reached ``PRC_ANNOTATION_DAILY_BUDGET``.
3. Claim up to a batch of waiting rows, newest posts first: ``SELECT … FOR UPDATE SKIP LOCKED`` and a claim time,
   so two workers never take the same post; a claim older than ``PRC_ANNOTATION_CLAIM_TIMEOUT_S`` (a dead worker)
   is taken again.
4. Ask the LLM about each post, ``PRC_ANNOTATION_LLM_CONCURRENCY`` at a time, while the budget lasts.
5. Store each outcome as it arrives, only while the claim is still this worker's: a valid annotation fills the
   columns; a post whose every attempt failed is marked failed with the reason and keeps any earlier annotation;
   a post the budget stopped goes back to waiting. The batch's tokens and cost go to the day's ``ScorerUsage``.

Classification (``classify_posts``) embeds the given posts and scores civic and toxicity for those the configured
classifiers have not scored yet; running it again changes nothing, and a new civic model classifies every post
again.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from rankers.content import classifiers
from rankers.content.annotation import Budget, LLMAnnotator, Outcome, is_political, post_for_prompt
from rankers.content.embeddings import embedding_input, embedding_matrix, ensure_embeddings
from rankers.content.models import CandidatePost, LLMStatus, PostAnnotation, PostAnnotationQuerySet
from rankers.models import ScorerUsage, text_hash
from rankers.scoring.attributes import canonical_name
from rankers.scoring.quality import LabelledText
from rankers.scoring.usage import Prices, Usage, record_usage, usage_sums

logger = logging.getLogger(__name__)

USAGE_PREFIX = "annotation:"


def build_annotator(http_client: Any = None) -> LLMAnnotator:
    """The LLM annotator as configured (its own base URL and model, else the scorers' ``OPENAI_*``/``PRC_LLM_*``)."""
    return LLMAnnotator(
        model=settings.PRC_ANNOTATION_LLM_MODEL or settings.PRC_LLM_MODEL,
        prompt_version=settings.PRC_ANNOTATION_PROMPT_VERSION,
        base_url=settings.PRC_ANNOTATION_LLM_BASE_URL or settings.OPENAI_BASE_URL or None,
        api_key=settings.OPENAI_API_KEY or "not-needed",
        timeout_s=settings.PRC_ANNOTATION_LLM_TIMEOUT_S,
        attempts=settings.PRC_ANNOTATION_LLM_ATTEMPTS,
        concurrency=settings.PRC_ANNOTATION_LLM_CONCURRENCY,
        prices=Prices(settings.PRC_LLM_PRICE_PROMPT_PER_1K, settings.PRC_LLM_PRICE_COMPLETION_PER_1K),
        http_client=http_client,
    )


# --- which posts wait ----------------------------------------------------------------------------------------


def open_annotations(now: dt.datetime | None = None) -> int:
    """Give each recent post of an active source that has none an annotation row waiting for the LLM."""
    since = (now or timezone.now()) - dt.timedelta(hours=settings.PRC_ANNOTATION_MAX_AGE_H)
    ids = CandidatePost.objects.filter(
        annotation__isnull=True, source__active=True, first_seen_at__gte=since
    ).values_list("pk", flat=True)
    rows = [PostAnnotation(post_id=pk) for pk in ids.iterator(chunk_size=5000)]
    PostAnnotation.objects.bulk_create(rows, ignore_conflicts=True, batch_size=5000)
    return len(rows)


def spent_today() -> float:
    """What annotation calls have cost today (the day ``record_usage`` counts in)."""
    total = ScorerUsage.objects.filter(day=timezone.localdate(), backend__startswith=USAGE_PREFIX).aggregate(
        total=Sum("cost")
    )["total"]
    return float(total or 0)


def budget_stop_reason(spent: float | None = None) -> str:
    """Why annotation is stopped for today, or "" when it may go on."""
    budget = settings.PRC_ANNOTATION_DAILY_BUDGET
    spent = spent_today() if spent is None else spent
    if spent >= budget:
        return f"the daily LLM budget of {budget:.2f} is spent ({spent:.2f} today); annotation resumes tomorrow"
    return ""


def claim_for_llm(limit: int, now: dt.datetime) -> list[int]:
    """Take up to ``limit`` waiting posts (newest first) for this worker; returns their ids."""
    stale = now - dt.timedelta(seconds=settings.PRC_ANNOTATION_CLAIM_TIMEOUT_S)
    with transaction.atomic():
        ids = list(
            PostAnnotation.objects.waiting_for_llm()
            .filter(Q(llm_claimed_at__isnull=True) | Q(llm_claimed_at__lt=stale))
            .order_by("-post_id")
            .select_for_update(skip_locked=True)
            .values_list("post_id", flat=True)[:limit]
        )
        PostAnnotation.objects.filter(post_id__in=ids).update(llm_claimed_at=now)
    return ids


# --- the LLM batch -------------------------------------------------------------------------------------------


@dataclass
class BatchResult:
    annotated: int = 0
    failed: int = 0
    returned: int = 0  # claimed but not asked: the budget ran out
    stopped: str = ""  # why annotation stopped, if it did


def annotate_llm_batch(
    *, limit: int | None = None, annotator: LLMAnnotator | None = None, now: dt.datetime | None = None
) -> BatchResult:
    """Claim and annotate one batch of waiting posts (steps 2-5 above)."""
    now = now or timezone.now()
    stopped = budget_stop_reason()
    if stopped:
        logger.warning("annotation stopped: %s", stopped)
        return BatchResult(stopped=stopped)
    ids = claim_for_llm(limit or settings.PRC_ANNOTATION_BATCH_SIZE, now)
    if not ids:
        return BatchResult()
    annotator = annotator or build_annotator()
    posts = CandidatePost.objects.filter(pk__in=ids).only("pk", "platform", "title", "text", "media_alt_text")
    work = [(post.pk, post_for_prompt(post.title, post.text, post.media_alt_text), post.platform) for post in posts]
    budget = Budget(settings.PRC_ANNOTATION_DAILY_BUDGET - spent_today())
    result, usage = BatchResult(), Usage()
    try:
        for outcome in annotator.annotate_many(work, budget, usage):
            store_outcome(outcome, annotator, claimed_at=now)
            if outcome.budget_stopped:
                result.returned += 1
            elif outcome.annotation is not None:
                result.annotated += 1
            else:
                result.failed += 1
    finally:
        record_usage(backend=annotator.usage_name, usage=usage)
    if result.returned:
        result.stopped = budget_stop_reason()
    return result


def store_outcome(outcome: Outcome, annotator: LLMAnnotator, *, claimed_at: dt.datetime) -> bool:
    """Write one post's outcome if this worker's claim on it stands; returns whether it did."""
    mine = PostAnnotation.objects.filter(post_id=outcome.key, llm_claimed_at=claimed_at)
    spent: dict[str, Any] = {"llm_attempts": outcome.attempts, "llm_claimed_at": None}
    if outcome.budget_stopped:
        return bool(mine.update(**spent))
    spent |= {
        "prompt_tokens": outcome.prompt_tokens,
        "completion_tokens": outcome.completion_tokens,
        "cost": Decimal(str(round(outcome.cost, 6))),
    }
    now = timezone.now()
    if outcome.annotation is None:
        updated = mine.update(**spent, llm_status=LLMStatus.FAILED, llm_error=outcome.error[:2000], llm_failed_at=now)
        logger.warning("annotation of post %s failed: %s", outcome.key, outcome.error)
        return bool(updated)
    return bool(
        mine.update(
            **spent,
            **asdict(outcome.annotation),  # its fields are the LLM columns
            llm_model=annotator.model,
            prompt_version=annotator.prompt_version,
            annotated_at=now,
            llm_status=LLMStatus.DONE,
            llm_error="",
        )
    )


def retry_failed() -> int:
    """Put every failed post back in the LLM's queue (after fixing the server or the prompt); returns how many."""
    return PostAnnotation.objects.failed().update(llm_status=LLMStatus.PENDING, llm_claimed_at=None, llm_attempts=0)


def llm_batches_waiting() -> int:
    """How many batch tasks the waiting, unclaimed posts make."""
    waiting = PostAnnotation.objects.waiting_for_llm().filter(llm_claimed_at__isnull=True).count()
    return -(-waiting // settings.PRC_ANNOTATION_BATCH_SIZE)


# --- classification ------------------------------------------------------------------------------------------


def unclassified(civic: classifiers.CivicModel | None = None) -> PostAnnotationQuerySet:
    """Posts the configured classifiers have not scored (never classified, or by another model)."""
    current = classifiers.classifier_version(civic if civic is not None else classifiers.civic_model())
    return PostAnnotation.objects.exclude(classifier_version=current)


def unclassified_chunks(max_chunks: int) -> list[list[int]]:
    """Ids of unclassified posts, newest first, in chunks of a batch: one classification task each."""
    size = settings.PRC_ANNOTATION_BATCH_SIZE
    ids = list(unclassified().order_by("-post_id").values_list("post_id", flat=True)[: max_chunks * size])
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def classify_posts(post_ids: Sequence[int]) -> int:
    """Embed these posts and score civic and toxicity, unless the configured classifiers already have; returns
    how many were classified (0 the second time)."""
    civic = classifiers.civic_model()
    rows = list(unclassified(civic).filter(post_id__in=list(post_ids)).select_related("post").order_by("post_id"))
    if not rows:
        return 0
    digests = [text_hash(row.post.text, row.post.title) for row in rows]
    texts = [embedding_input(row.post.title, row.post.text) for row in rows]
    ensure_embeddings(dict(zip(digests, texts, strict=True)))
    civic_scores = civic_probabilities(civic, digests, texts)
    toxic = classifiers.toxicity(texts)
    version, now = classifiers.classifier_version(civic), timezone.now()
    for row, civic_score, toxic_score in zip(rows, civic_scores, toxic, strict=True):
        row.civic, row.toxicity, row.classifier_version, row.classified_at = civic_score, toxic_score, version, now
    PostAnnotation.objects.bulk_update(rows, ["civic", "toxicity", "classifier_version", "classified_at"])
    return len(rows)


def civic_probabilities(
    civic: classifiers.CivicModel | None, digests: Sequence[str], texts: Sequence[str]
) -> list[float | None]:
    """The civic probability of each text, from its stored embedding; None without a model or an embedding."""
    scores: list[float | None] = [None] * len(texts)
    if civic is None:
        return scores
    found, matrix = embedding_matrix(digests)
    row_of = {digest: i for i, digest in enumerate(found)}
    embedded = [i for i, digest in enumerate(digests) if digest in row_of]  # a post without text has none
    if embedded:
        vectors = matrix[[row_of[digests[i]] for i in embedded]]
        for i, p in zip(embedded, civic.probabilities([texts[i] for i in embedded], vectors), strict=True):
            scores[i] = p
    return scores


def civic_training_labels() -> list[LabelledText]:
    """Each LLM-annotated post as a civic label (1 when the LLM called it political or social, ``is_political``), for
    ``manage.py train_scorer --from-annotations``: the text is the one the embeddings read."""
    attribute = canonical_name(settings.PRC_CIVIC_LABEL)
    rows = (
        PostAnnotation.objects.annotated()
        .filter(quality__has_key="is_political_social")
        .values_list("post__title", "post__text", "quality")
    )
    labels = [
        LabelledText(embedding_input(title, text), attribute, 1.0 if is_political(quality) else 0.0)
        for title, text, quality in rows.iterator()
    ]
    return [row for row in labels if row.text]


# --- health --------------------------------------------------------------------------------------------------


def annotation_stats(since: dt.datetime) -> dict[str, Any]:
    """Annotation health since ``since``, for the health page: what waits, what failed, what it cost per day.

    Keys: ``backlog`` (posts waiting for the LLM, claimed or not), ``in_flight`` (claimed by a worker),
    ``oldest_waiting_since`` (when the longest-waiting post was first seen, or None), ``unclassified`` (posts the
    classifiers have not scored), ``annotated`` and ``failed`` (LLM outcomes since ``since``), ``failed_share``
    (failed / both, None when neither), ``days`` (per day since ``since``: calls, failed_calls, prompt_tokens,
    completion_tokens, cost), ``budget``, ``spent_today`` and ``stopped`` (why annotation is stopped, or "").
    """
    waiting = PostAnnotation.objects.waiting_for_llm()
    annotated = PostAnnotation.objects.filter(annotated_at__gte=since).count()
    failed = PostAnnotation.objects.filter(llm_failed_at__gte=since, llm_status=LLMStatus.FAILED).count()
    oldest = waiting.order_by("post__first_seen_at").values_list("post__first_seen_at", flat=True).first()
    days = usage_sums(
        ScorerUsage.objects.filter(day__gte=timezone.localdate(since), backend__startswith=USAGE_PREFIX), "day"
    )
    spent = spent_today()
    return {
        "backlog": waiting.count(),
        "in_flight": waiting.filter(llm_claimed_at__isnull=False).count(),
        "oldest_waiting_since": oldest,
        "unclassified": PostAnnotation.objects.filter(classified_at__isnull=True).count(),
        "annotated": annotated,
        "failed": failed,
        "failed_share": failed / (annotated + failed) if annotated + failed else None,
        "days": [{**day, "cost": float(day["cost"])} for day in days],
        "budget": settings.PRC_ANNOTATION_DAILY_BUDGET,
        "spent_today": spent,
        "stopped": budget_stop_reason(spent),
    }
