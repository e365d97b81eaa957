"""Candidate posts stored in one go with their annotation and embedding, through the models the connectors and
annotators write: for the demo's inventory (``rankers.content.demo``), the tests and the benchmarks.

Nothing here calls a model or the network: the caller gives each post's annotation columns and vector.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.utils import timezone

from rankers.content.embeddings import to_bytes
from rankers.content.models import CandidatePost, ContentSource, LLMStatus, PostAnnotation, TextEmbedding
from rankers.models import text_hash


@dataclass(frozen=True)
class NewPost:
    """A post to store: what a connector would have read, plus (optionally) its annotation columns
    (``PostAnnotation`` field names) and its sentence embedding."""

    post_id: str
    url: str
    title: str
    text: str
    created_at: dt.datetime | None
    annotation: Mapping[str, Any] | None = None
    vector: np.ndarray | None = None


def store_posts(
    source: ContentSource, posts: Sequence[NewPost], *, model: str, now: dt.datetime | None = None
) -> list[CandidatePost]:
    """Store the posts not stored yet (by platform and post id) on ``source``'s platform, each given annotation
    as a valid LLM annotation made ``now`` (unless the columns say otherwise), and each given vector as the
    embedding of its text under the encoder name ``model``. Returns the posts stored by this call, in order."""
    now = now or timezone.now()
    known = set(
        CandidatePost.objects.filter(platform=source.platform, post_id__in=[p.post_id for p in posts]).values_list(
            "post_id", flat=True
        )
    )
    new = [p for p in posts if p.post_id not in known]
    stored = CandidatePost.objects.bulk_create(
        [
            CandidatePost(
                source=source,
                platform=source.platform,
                post_id=p.post_id,
                url=p.url,
                title=p.title,
                text=p.text,
                created_at=p.created_at,
                first_seen_at=now,
            )
            for p in new
        ],
        batch_size=2000,
    )
    PostAnnotation.objects.bulk_create(
        [
            PostAnnotation(post=post, **{"annotated_at": now, "llm_status": LLMStatus.DONE, **p.annotation})
            for post, p in zip(stored, new, strict=True)
            if p.annotation is not None
        ],
        batch_size=2000,
    )
    store_embeddings(
        {text_hash(p.text, p.title): p.vector for p in new if p.vector is not None},
        model=model,
    )
    return stored


def store_embeddings(vectors: Mapping[str, np.ndarray], *, model: str) -> None:
    """Store ``{text_hash: vector}`` (normalized as every stored vector is); hashes already stored keep theirs."""
    TextEmbedding.objects.bulk_create(
        [TextEmbedding(text_hash=digest, model=model, vector=to_bytes(vector)) for digest, vector in vectors.items()],
        ignore_conflicts=True,
        batch_size=2000,
    )
