"""Refreshing the pools and the per-participant queues that the inserting arms serve from.

``refresh_platform(platform)`` (Celery beat every ``PRC_QUEUE_REFRESH_S`` per platform, or ``manage.py
refresh_queues``), for each inserting ranker:

1. Build its ``CandidatePool`` on the platform: the newest ``PRC_CONTENT_POOL_SIZE`` posts of active sources
   that draw for the arm, as plain candidates (annotation columns, source lean, annotation version), with the
   non-personalized order (``default_ids``).
2. Build each of its participants' ``ParticipantQueue`` with the paper's personalization
   (``rankers.content.personalization``): Add News by nearest neighbours of what they were served, Challenging
   Stereotypes by source-post mismatch against their baseline positions. Diverse Approval has none ("a global
   pool shared between all users"). A participant without history or baseline answers gets an empty,
   non-personalized queue: serving then uses the pool's default order.

Every random choice is seeded by participant, platform, ranker and refresh slot (``PRC_QUEUE_REFRESH_S``), and
rows are upserted, so running a refresh twice in a slot gives the same pools and queues.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models.functions import Coalesce
from django.utils import timezone

from participants.models import Participant
from rankers.content import personalization as P
from rankers.content.embeddings import embedding_input, embedding_matrix, ensure_embeddings
from rankers.content.inventory import candidate_id, candidate_row
from rankers.content.models import INSERTING_ARMS, CandidatePool, CandidatePost, ParticipantQueue
from rankers.models import text_hash
from rankers.plugins import inserting as ins
from rankers.plugins.base import Candidate
from rankers.plugins.challenging_stereotypes import passes_quality

logger = logging.getLogger(__name__)

QUEUED_RANKERS = (ins.ADD_NEWS, ins.CHALLENGING_STEREOTYPES)


@dataclass(frozen=True)
class PoolPost:
    """A pool post with what personalization needs beside the candidate: its text and issue positions."""

    candidate: Candidate
    text_hash: str
    text: str
    issue_opinions: Mapping[str, Any]


@dataclass(frozen=True)
class QueueTarget:
    """A participant whose arm uses a queued ranker: pseudonymous id, arm settings, baseline positions."""

    participant_id: str
    config: Mapping[str, Any]
    positions: Mapping[str, Any]


@dataclass(frozen=True)
class RefreshResult:
    ranker_key: str
    platform: str
    pool_size: int
    queues: int
    personalized: int


def paper_orientation(stored: int | None) -> float | None:
    """The annotation's political orientation on the paper's scale (7 extremely liberal ... 1 extremely
    conservative). ``PostAnnotation`` stores 1 = extremely liberal ... 7 = extremely conservative."""
    return None if stored is None else float(8 - stored)


def annotation_version(annotation: Any) -> str:
    """Which annotation a post was inserted on: the LLM model, prompt version and classifier version."""
    if annotation is None:
        return ""
    parts = (annotation.llm_model, annotation.prompt_version, annotation.classifier_version)
    return "/".join(part for part in parts if part)


def _quality(raw: Any) -> dict[str, float]:
    if not isinstance(raw, dict):
        return {}
    return {k: float(v) for k, v in raw.items() if isinstance(v, bool | int | float)}


def to_pool_post(post: CandidatePost, annotation: Any) -> PoolPost:
    posted_at = post.created_at or post.first_seen_at
    candidate = Candidate(
        id=candidate_id(post.pk),
        url=post.url,
        source_id=post.source_id,
        lean=post.source.lean,
        posted_at=posted_at,
        post_id=post.post_id,
        annotation_version=annotation_version(annotation),
        civic=getattr(annotation, "civic", None),
        approval_republican=getattr(annotation, "approval_republican", None),
        approval_democrat=getattr(annotation, "approval_democrat", None),
        national_interest=getattr(annotation, "national_interest", None),
        political_orientation=paper_orientation(getattr(annotation, "political_orientation", None)),
        ideologically_surprising=getattr(annotation, "ideologically_surprising", None),
        quality=_quality(getattr(annotation, "quality", None)),
    )
    return PoolPost(
        candidate=candidate,
        text_hash=text_hash(post.text, post.title),
        text=embedding_input(post.title, post.text),
        issue_opinions=getattr(annotation, "issue_opinions", None) or {},
    )


# --- step 1: pools ------------------------------------------------------------------------------------------


def pool_posts(ranker_key: str, platform: str) -> list[PoolPost]:
    """The newest posts of active sources that draw for this arm on this platform (annotated ones, for the two
    arms that read annotations; Add News needs only a rated source)."""
    posts = (
        CandidatePost.objects.filter(platform=platform, source__active=True, source__arms__contains=[ranker_key])
        .select_related("source", "annotation")
        .annotate(posted=Coalesce("created_at", "first_seen_at"))
        .order_by("-posted", "-pk")
    )
    if ranker_key == ins.ADD_NEWS:
        posts = posts.exclude(source__lean="")
    else:
        posts = posts.filter(annotation__annotated_at__isnull=False)
    return [to_pool_post(post, _annotation(post)) for post in posts[: settings.PRC_CONTENT_POOL_SIZE]]


def _annotation(post: CandidatePost) -> Any:
    try:
        return post.annotation
    except CandidatePost.annotation.RelatedObjectDoesNotExist:
        return None


def default_order(ranker_key: str, posts: Sequence[PoolPost]) -> list[str]:
    """The non-personalized order. Challenging Stereotypes: its non-personalized source, the ideologically
    surprising posts, newest first; Diverse Approval: every post (the ranker sorts by bridging score); Add
    News: newest first."""
    if ranker_key == ins.CHALLENGING_STEREOTYPES:
        return [p.candidate.id for p in posts if p.candidate.ideologically_surprising]
    return [p.candidate.id for p in posts]


def save_pool(ranker_key: str, platform: str, posts: Sequence[PoolPost], *, now: dt.datetime) -> CandidatePool:
    newest = max((p.candidate.posted_at for p in posts if p.candidate.posted_at), default=None)
    pool, _ = CandidatePool.objects.update_or_create(
        ranker_key=ranker_key,
        platform=platform,
        defaults={
            "built_at": now,
            "newest_post_at": newest,
            "candidates": [candidate_row(p.candidate) for p in posts],
            "default_ids": default_order(ranker_key, posts),
            "size": len(posts),
        },
    )
    return pool


# --- step 2: queues -------------------------------------------------------------------------------------------


def queue_targets(ranker_key: str) -> list[QueueTarget]:
    """Enrolled, not withdrawn participants whose assigned arm runs ``ranker_key``."""
    rows = (
        Participant.objects.enrolled()
        .filter(assignment__arm__ranker_key=ranker_key)
        .values_list("public_id", "assignment__arm__ranker_config", "baseline_issue_positions")
        .order_by("public_id")
    )
    return [QueueTarget(pid, config or {}, positions or {}) for pid, config, positions in rows]


def refresh_rng(participant_id: str, platform: str, ranker_key: str, now: dt.datetime) -> random.Random:
    slot = int(now.timestamp() // settings.PRC_QUEUE_REFRESH_S)
    return random.Random(f"{ranker_key}|{participant_id}|{platform}|{slot}")


# Posts each participant was served in their last 100 post slates on the platform (text hashes, deduplicated).
SERVED_SQL = """
SELECT participant_id, array_agg(DISTINCT h) FROM (
    SELECT participant_id, original_hashes,
           row_number() OVER (PARTITION BY participant_id ORDER BY served_at DESC) AS n
    FROM rankers_slate
    WHERE participant_id = ANY(%s) AND platform = %s AND content_type = 'post' AND served_at >= %s
) s CROSS JOIN LATERAL unnest(s.original_hashes) AS h
WHERE s.n <= %s
GROUP BY participant_id
"""
# The text of each hash (a served version's title and body, as the encoder reads a post).
TEXTS_SQL = """
SELECT DISTINCT ON (text_hash) text_hash, title, text FROM rankers_contentitem
WHERE text_hash = ANY(%s) AND type = 'post'
"""
HISTORY_DAYS = 90  # how far back "their last 100 ranking requests" is looked for


def served_texts(participant_ids: Sequence[str], platform: str, *, now: dt.datetime) -> dict[str, dict[str, str]]:
    """Participant -> {text hash: text} of the posts served to them in their last 100 requests on the platform."""
    since = now - dt.timedelta(days=HISTORY_DAYS)
    with connection.cursor() as cursor:
        cursor.execute(SERVED_SQL, [list(participant_ids), platform, since, P.SERVED_REQUESTS])
        served = dict(cursor.fetchall())
        hashes = sorted({h for hs in served.values() for h in hs})
        cursor.execute(TEXTS_SQL, [hashes])
        texts = {digest: embedding_input(title, text) for digest, title, text in cursor.fetchall()}
    return {pid: {h: texts[h] for h in hs if h in texts} for pid, hs in served.items()}


def add_news_queues(
    targets: Sequence[QueueTarget], posts: Sequence[PoolPost], platform: str, *, now: dt.datetime
) -> dict[str, list[str]]:
    """Participant -> queue (paper 3.4); participants without served history are left out."""
    history = served_texts([t.participant_id for t in targets], platform, now=now)
    rngs = {pid: refresh_rng(pid, platform, ins.ADD_NEWS, now) for pid in history}
    samples = {pid: P.sample_served(texts, rngs[pid]) for pid, texts in history.items() if texts}
    sampled = {digest: history[pid][digest] for pid, digests in samples.items() for digest in digests}
    # Embedding is the scorer workers' job; texts are embedded once, so later refreshes find them stored.
    ensure_embeddings(sampled | {p.text_hash: p.text for p in posts})
    post_ids = {p.text_hash: p.candidate.id for p in posts}
    candidate_hashes, candidates = embedding_matrix(post_ids)
    candidate_ids = [post_ids[digest] for digest in candidate_hashes]
    sample_hashes, sample_vectors = embedding_matrix(sampled)
    neighbours = P.nearest_candidates(sample_vectors, candidates)  # once per distinct served text
    row_of = {digest: row for row, digest in enumerate(sample_hashes)}
    queues: dict[str, list[str]] = {}
    for pid, digests in samples.items():
        rows = [row_of[d] for d in digests if d in row_of]
        queues[pid] = P.queue_from_neighbours(neighbours[rows], candidate_ids, rngs[pid])
    return queues


def stereotypes_queues(
    targets: Sequence[QueueTarget], posts: Sequence[PoolPost], platform: str
) -> dict[str, list[str]]:
    """Participant -> queue (paper 3.3, source-post mismatch); participants without baseline positions are left
    out. Only posts that pass the arm's quality filters are queued."""
    if not posts:
        return {}
    ids = [p.candidate.id for p in posts]
    profiles = np.vstack([P.profile(p.candidate.political_orientation, p.issue_opinions) for p in posts])
    sources = np.array([p.candidate.source_id for p in posts])
    surprising = np.array([bool(p.candidate.ideologically_surprising) for p in posts])
    passing: dict[str, np.ndarray] = {}
    queues: dict[str, list[str]] = {}
    for target in targets:
        user = P.participant_profile(target.positions)
        if user is None:
            continue
        settings_ = ins.arm_settings(ins.CHALLENGING_STEREOTYPES, target.config)
        key = json.dumps(settings_, sort_keys=True)
        if key not in passing:
            passing[key] = np.array([passes_quality(p.candidate, platform, settings_) for p in posts])
        mask = passing[key]
        ranked = P.stereotypes_queue(
            ids, profiles, sources, surprising & mask, user, min_score=settings_["min_queue_score"]
        )
        allowed = {i for i, ok in zip(ids, mask, strict=True) if ok}
        queues[target.participant_id] = [i for i in ranked if i in allowed]
    return queues


def save_queues(
    ranker_key: str, platform: str, targets: Iterable[QueueTarget], queues: Mapping[str, list[str]], *, now: dt.datetime
) -> int:
    rows = [
        ParticipantQueue(
            participant_id=t.participant_id,
            ranker_key=ranker_key,
            platform=platform,
            built_at=now,
            candidate_ids=queues.get(t.participant_id, []),
            personalized=t.participant_id in queues,
        )
        for t in targets
    ]
    ParticipantQueue.objects.bulk_create(
        rows,
        batch_size=2000,
        update_conflicts=True,
        unique_fields=["participant_id", "ranker_key", "platform"],
        update_fields=["built_at", "candidate_ids", "personalized"],
    )
    return len(rows)


def refresh(ranker_key: str, platform: str, *, now: dt.datetime | None = None) -> RefreshResult:
    """Steps 1 and 2 for one ranker on one platform."""
    now = now or timezone.now()
    posts = pool_posts(ranker_key, platform)
    save_pool(ranker_key, platform, posts, now=now)
    if ranker_key not in QUEUED_RANKERS:
        return RefreshResult(ranker_key, platform, len(posts), 0, 0)
    targets = queue_targets(ranker_key)
    if ranker_key == ins.ADD_NEWS:
        queues = add_news_queues(targets, posts, platform, now=now)
    else:
        queues = stereotypes_queues(targets, posts, platform)
    saved = save_queues(ranker_key, platform, targets, queues, now=now)
    return RefreshResult(ranker_key, platform, len(posts), saved, len(queues))


def refresh_platform(platform: str, *, now: dt.datetime | None = None) -> list[RefreshResult]:
    return [refresh(ranker_key, platform, now=now) for ranker_key in INSERTING_ARMS]
