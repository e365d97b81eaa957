"""The slate log and ranker service keys.

The slate log is append-only and keyed by the participant's pseudonymous
``public_id`` (no foreign key into ``participants``), so it can be partitioned,
exported or moved to a distributed PostgreSQL without dragging contact data
along. ``Slate`` is a PostgreSQL table range-partitioned by month on
``served_at`` (see migration 0001); Django sees ``id`` as the primary key, the
database's is ``(id, served_at)``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.db import models, transaction
from django.utils import timezone


def text_hash(text: str, title: str | None = None) -> str:
    """Identity of one version of an item's content (an edited post gets a new row)."""
    return hashlib.sha256(f"{title or ''}\x00{text}".encode()).hexdigest()


class ContentItem(models.Model):
    """The content of one feed item, stored once however many slates show it."""

    platform = models.CharField(max_length=20)
    item_id = models.CharField(max_length=255)
    text_hash = models.CharField(max_length=64)
    type = models.CharField(max_length=20, default="post")
    post_id = models.CharField(max_length=255, blank=True)
    parent_id = models.CharField(max_length=255, blank=True)
    title = models.TextField(blank=True)
    text = models.TextField(blank=True)
    author_name_hash = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(null=True, blank=True, help_text="When the platform says it was posted.")
    embedded_urls = ArrayField(models.TextField(), default=list, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["platform", "item_id", "text_hash"], name="contentitem_unique_version"),
        ]

    def __str__(self) -> str:
        return f"{self.platform}:{self.item_id}"


class SlateQuerySet(models.QuerySet["Slate"]):
    def served_between(self, start: dt.datetime, end: dt.datetime) -> SlateQuerySet:
        """Half-open ``[start, end)``; lets PostgreSQL prune partitions."""
        return self.filter(served_at__gte=start, served_at__lt=end)

    def for_participant(self, public_id: str) -> SlateQuerySet:
        return self.filter(participant_id=public_id)


class Slate(models.Model):
    """One answered /rank request: what came in, what went out, and how long it took."""

    id = models.BigAutoField(primary_key=True)
    served_at = models.DateTimeField(default=timezone.now)
    participant_id = models.CharField(max_length=32, help_text="Participant.public_id (pseudonymous).")
    study_id = models.IntegerField()
    arm = models.CharField(max_length=50, help_text="Slug of the assigned arm.")
    effective_arm = models.CharField(
        max_length=50, help_text="Slug of the arm whose ranker was in effect (control during baseline)."
    )
    ranker_key = models.CharField(max_length=100)
    platform = models.CharField(max_length=20)
    content_type = models.CharField(max_length=20, help_text="post or comment (the slate's majority type).")
    session_id = models.CharField(max_length=255, blank=True)
    original_ids = ArrayField(models.TextField(), default=list)
    original_hashes = ArrayField(
        models.CharField(max_length=64), default=list, help_text="ContentItem.text_hash of each original item."
    )
    returned_ids = ArrayField(models.TextField(), default=list)
    added_ids = ArrayField(models.TextField(), default=list)
    deleted_ids = ArrayField(models.TextField(), default=list)
    invalid_items = models.JSONField(default=dict, blank=True, help_text="Item id -> why it was not ranked.")
    ranker_ms = models.FloatField(null=True, blank=True, help_text="Time the ranker (and its scoring) took.")
    served_ms = models.FloatField(help_text="Receipt to answer, hold included.")
    fallback_reason = models.CharField(max_length=50, blank=True)
    intervention_on = models.BooleanField(default=False)
    prefetch = models.BooleanField(default=False)
    nrc = models.FloatField(
        null=True, blank=True, help_text="Normalized rank change: mean |Δrank| of kept movable items / slate length."
    )
    rbo = models.FloatField(
        null=True, blank=True, help_text="Extrapolated rank-biased overlap (p=0.9), original vs returned."
    )
    n_items = models.PositiveIntegerField(default=0)
    n_added = models.PositiveIntegerField(default=0)
    n_deleted = models.PositiveIntegerField(default=0)
    hold_ms = models.FloatField(
        null=True, blank=True, help_text="The hold this answer was given (the lag ramp's value at the time)."
    )
    phase = models.CharField(
        max_length=20,
        blank=True,
        db_default="",
        help_text="Why the effective arm is what it is: baseline, not_started (the arm has not started on this"
        " platform) or assigned.",
    )
    n_scored = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Items scored on every attribute the ranker reads (the dose); empty when the ranker reads none.",
    )
    slate_pass = models.PositiveSmallIntegerField(
        default=1, help_text="Which pass of the platform this request was (Facebook posts: 1 = first 10, 2 = next 35)."
    )
    slate_length = models.PositiveIntegerField(
        null=True, blank=True, help_text="Table S11's slate length for this request: what NRC divides by."
    )
    fixed_items = models.JSONField(
        default=dict,
        blank=True,
        help_text="Item id -> why the arm could not move it (ad, no_text, past_slate_size, ...).",
    )
    capped = models.BooleanField(
        default=False, help_text="The ranker inserted or removed more than its caps allow; its first items were kept."
    )
    inserted = models.JSONField(
        default=list,
        blank=True,
        help_text="Each inserted post's provenance: [{id, source_id, lean, annotation_version}], in feed order.",
    )
    uid = models.UUIDField(
        default=uuid.uuid4, editable=False, help_text="Made when served; a repeated insert of the slate is a no-op."
    )

    objects = SlateQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["served_at"], name="slate_served_at"),
            models.Index(fields=["study_id", "served_at"], name="slate_study_served_at"),
            models.Index(fields=["participant_id", "served_at"], name="slate_participant_served_at"),
        ]
        # The partition key must be part of every unique constraint of a partitioned table.
        constraints = [models.UniqueConstraint(fields=["uid", "served_at"], name="slate_unique_uid")]

    def __str__(self) -> str:
        return f"slate {self.id} {self.participant_id} {self.platform} {self.served_at:%Y-%m-%d %H:%M}"


def new_service_key() -> str:
    return "rk_" + secrets.token_urlsafe(32)


class RankerServiceKeyQuerySet(models.QuerySet["RankerServiceKey"]):
    def active(self) -> RankerServiceKeyQuerySet:
        return self.filter(revoked_at__isnull=True)


class RankerServiceKey(models.Model):
    """A bearer key for ``/rankers/<name>/rank``; only its SHA-256 is stored."""

    label = models.CharField(max_length=200, blank=True)
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12, help_text="First characters of the key, to tell keys apart.")
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = RankerServiceKeyQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.prefix}… {self.label}".strip()

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    def assign_new_key(self) -> str:
        """Give this (unsaved) row a fresh key; the plain key is returned once and never stored."""
        key = new_service_key()
        self.key_hash, self.prefix = self.hash_key(key), key[:8]
        return key

    def save_with_new_key(self, *, by: Any = None) -> str:
        """Store this new row with a fresh key, audited; the plain key is returned once and never stored."""
        from participants.audit import record_audit

        key = self.assign_new_key()
        with transaction.atomic():
            self.save()
            record_audit(
                action="ranker_key.issued", obj=self, actor=by, detail={"prefix": self.prefix, "label": self.label}
            )
        return key

    @classmethod
    def issue(cls, *, label: str = "", by: Any = None) -> tuple[RankerServiceKey, str]:
        """Create a key (``manage.py create_ranker_key``); the plain key is returned once and never stored."""
        row = cls(label=label)
        return row, row.save_with_new_key(by=by)

    def revoke(self, *, by: Any = None, at: dt.datetime | None = None) -> bool:
        """Stop this key working, audited; True if this call revoked it (a repeat changes nothing).

        The one way a key is revoked: the admin action and ``manage.py revoke_ranker_key`` call it.
        """
        from participants.audit import record_audit

        at = at or timezone.now()
        with transaction.atomic():
            revoked = RankerServiceKey.objects.filter(pk=self.pk, revoked_at__isnull=True).update(revoked_at=at)
            if revoked:
                record_audit(action="ranker_key.revoked", obj=self, actor=by, detail={"prefix": self.prefix})
        self.refresh_from_db(fields=["revoked_at"])
        return bool(revoked)


from rankers.content.models import (  # noqa: E402,F401
    CandidatePool,
    CandidatePost,
    ConnectorRun,
    ContentSource,
    ParticipantQueue,
    PostAnnotation,
    TextEmbedding,
)
from rankers.models_rollups import DailyArmRollup  # noqa: E402,F401


class TextScoreQuerySet(models.QuerySet["TextScore"]):
    def of_scorer(self, scorer: str) -> TextScoreQuerySet:
        return self.filter(scorer=scorer)


class TextScore(models.Model):
    """Attribute scores of one text by one scorer: the durable copy of what the scorer workers put in Redis.

    A text is scored once per scorer (``rankers.scoring.identity()``: the backend and its model); Redis holds the
    recent ones for the web processes, and this table outlives Redis's expiry and restarts.
    """

    scorer = models.CharField(max_length=300, help_text="Backend and model that made the scores.")
    text_hash = models.CharField(max_length=64, help_text="sha256 of the text the classifiers read.")
    asked = ArrayField(models.CharField(max_length=50), default=list, help_text="Attributes the scorer was asked.")
    scores = models.JSONField(default=dict, help_text="Attribute -> score in [0, 1].")
    scored_at = models.DateTimeField(default=timezone.now)

    objects = TextScoreQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scorer", "text_hash"], name="textscore_unique_text")]

    def __str__(self) -> str:
        return f"{self.scorer} {self.text_hash[:12]}"


class ScorerUsage(models.Model):
    """What a paid scorer (the ``llm`` backend) used, per day and model: calls, tokens and their cost.

    Each scored batch adds to its day's row (``rankers.scoring.usage.record_usage``), so the cost of a study's
    scoring can be read without keeping a row per call.
    """

    day = models.DateField()
    backend = models.CharField(max_length=200, help_text="The backend's name, e.g. llm:gpt-4o-mini.")
    calls = models.PositiveBigIntegerField(default=0)
    failed_calls = models.PositiveBigIntegerField(default=0, help_text="Errors, timeouts and invalid replies.")
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=0, help_text="At the configured prices.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "backend"], name="scorer_usage_one_row_per_day")]

    def __str__(self) -> str:
        return f"{self.backend} on {self.day}: {self.calls} calls, {self.cost}"
