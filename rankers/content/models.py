"""Sources of candidate posts, the posts themselves, and one row per connector run.

Imported by ``rankers.models`` so Django registers them under the ``rankers`` app.
"""

from __future__ import annotations

import datetime as dt

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from participants.paper import PLATFORM_LABELS, PLATFORMS
from rankers.validation import MAX_URL_LENGTH, is_http_url

# The arms that insert posts from the inventory (their ranker keys, participants/paper.py).
INSERTING_ARMS = ("challenging_stereotypes", "diverse_approval", "add_news")


class Lean(models.TextChoices):
    LEFT = "left", "Left"
    CENTRE = "centre", "Centre"
    RIGHT = "right", "Right"


class SourceKind(models.TextChoices):
    NEWS_OUTLET = "news_outlet", "News outlet"
    SUBREDDIT = "subreddit", "Subreddit"
    ACCOUNT = "account", "Account"
    PAGE = "page", "Page"


class Connector(models.TextChoices):
    RSS = "rss", "RSS/Atom feed"
    REDDIT = "reddit", "Reddit listing JSON"
    DATASET = "dataset", "Dataset export (CSV or JSON lines)"


class ContentSourceQuerySet(models.QuerySet["ContentSource"]):
    def active(self) -> ContentSourceQuerySet:
        return self.filter(active=True)

    def fetched_by(self, connector: str) -> ContentSourceQuerySet:
        """Sources the beat schedule fetches with ``connector``: active, with an address to fetch."""
        return self.active().filter(connector=connector).exclude(location="")


class ContentSource(models.Model):
    """Where candidate posts come from: a news outlet's feed, a subreddit, an account or a page."""

    name = models.CharField(max_length=200)
    platform = models.CharField(
        max_length=20,
        choices=[(p, PLATFORM_LABELS[p]) for p in PLATFORMS],
        help_text="The platform whose feeds this source's posts are inserted into.",
    )
    kind = models.CharField(max_length=20, choices=SourceKind.choices)
    connector = models.CharField(max_length=20, choices=Connector.choices)
    location = models.CharField(
        max_length=MAX_URL_LENGTH,
        blank=True,
        help_text="The feed, listing or dataset address (http or https). A dataset source may leave it empty "
        "and be filled only by hand (manage.py fetch_content --source ID --file PATH).",
    )
    lean = models.CharField(max_length=10, choices=Lean.choices, blank=True, help_text="Empty: not rated.")
    reliability = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(100)],
        help_text="Reliability rating from 0 (unreliable) to 100 (e.g. a NewsGuard score); empty: not rated.",
    )
    arms = ArrayField(
        models.CharField(max_length=50, choices=[(arm, arm) for arm in INSERTING_ARMS]),
        default=list,
        blank=True,
        help_text="Ranker keys of the inserting arms that draw on this source.",
    )
    active = models.BooleanField(default=True, help_text="Inactive sources are not fetched and not drawn on.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ContentSourceQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "location"], condition=~Q(location=""), name="contentsource_unique_location"
            ),
        ]
        ordering = ["platform", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_platform_display()})"

    def clean(self) -> None:
        if self.location and not is_http_url(self.location):
            raise ValidationError({"location": "Give an http or https address."})
        if not self.location and self.connector != Connector.DATASET:
            raise ValidationError({"location": "Feeds and listings need the address to fetch."})
        unknown = sorted(set(self.arms) - set(INSERTING_ARMS))
        if unknown:
            raise ValidationError({"arms": f"Not an inserting arm: {', '.join(unknown)}."})


class CandidatePost(models.Model):
    """One post that an inserting arm may add to a feed, normalized from whatever the connector read.

    Stored once per platform and post id and once per platform and URL; a post seen again is not rewritten
    (its first version is the one later annotated).
    """

    source = models.ForeignKey(ContentSource, on_delete=models.PROTECT, related_name="posts")
    platform = models.CharField(max_length=20)
    post_id = models.CharField(max_length=255, help_text="The platform's id, or the URL where it has none.")
    url = models.CharField(max_length=MAX_URL_LENGTH, help_text="Public address of the post.")
    author = models.CharField(max_length=255, blank=True, help_text="Author or outlet, as the source names it.")
    title = models.TextField(blank=True)
    text = models.TextField(blank=True)
    media_alt_text = models.TextField(blank=True)
    created_at = models.DateTimeField(null=True, blank=True, help_text="When the platform says it was posted.")
    first_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["platform", "post_id"], name="candidatepost_unique_post_id"),
            models.UniqueConstraint(fields=["platform", "url"], name="candidatepost_unique_url"),
        ]
        indexes = [models.Index(fields=["source", "created_at"], name="candidatepost_source_created")]

    def __str__(self) -> str:
        return f"{self.platform}:{self.post_id}"


class ConnectorRun(models.Model):
    """One fetch of one source: what came in, what was new, and why it failed if it did."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    source = models.ForeignKey(ContentSource, on_delete=models.CASCADE, related_name="runs")
    connector = models.CharField(max_length=20, choices=Connector.choices)
    trigger = models.CharField(max_length=20, default="schedule", help_text="schedule, manual or file.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    items_read = models.PositiveIntegerField(default=0, help_text="Items in the feed or file.")
    items_new = models.PositiveIntegerField(default=0, help_text="Stored for the first time.")
    items_duplicate = models.PositiveIntegerField(default=0, help_text="Already stored (same post id or URL).")
    items_skipped = models.PositiveIntegerField(
        default=0, help_text="Not stored: no public URL, no text, marked NSFW, an unreadable line..."
    )
    error = models.TextField(blank=True, help_text="Why the run failed.")
    item_errors = models.JSONField(
        default=list, blank=True, help_text='Why items were skipped, the first ones: [{"item": n, "reason": ...}].'
    )

    class Meta:
        constraints = [
            # One run in flight per source: a second worker's claim fails instead of fetching twice.
            models.UniqueConstraint(fields=["source"], condition=Q(status="running"), name="connectorrun_one_running"),
        ]
        indexes = [models.Index(fields=["source", "-started_at"], name="connectorrun_source_started")]
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.source_id} {self.connector} {self.started_at:%Y-%m-%d %H:%M} {self.status}"

    @property
    def duration(self) -> dt.timedelta | None:
        return self.finished_at - self.started_at if self.finished_at else None


class LLMStatus(models.TextChoices):
    PENDING = "pending", "Waiting for the LLM"
    DONE = "done", "Annotated"
    FAILED = "failed", "Failed (invalid replies or errors on every attempt)"


class PostAnnotationQuerySet(models.QuerySet["PostAnnotation"]):
    def annotated(self) -> PostAnnotationQuerySet:
        """Posts with a valid LLM annotation (the columns of sections 3.2 and 3.3 are filled)."""
        return self.filter(annotated_at__isnull=False)

    def classified(self) -> PostAnnotationQuerySet:
        """Posts the classifiers have scored (civic where a civic model is configured, toxicity)."""
        return self.filter(classified_at__isnull=False)

    def waiting_for_llm(self) -> PostAnnotationQuerySet:
        return self.filter(llm_status=LLMStatus.PENDING)

    def failed(self) -> PostAnnotationQuerySet:
        return self.filter(llm_status=LLMStatus.FAILED)


class PostAnnotation(models.Model):
    """What the annotators said about one candidate post: the latest valid LLM annotation, the classifiers' scores,
    and the bookkeeping of the LLM's attempts.

    Every annotation column is nullable, so a post can be classified before the LLM has read it (or when the LLM
    failed). An invalid LLM reply never fills them: the columns are written only from a reply that passed
    validation (``rankers/content/annotation.py``); a failure is recorded in ``llm_status`` and ``llm_error``.
    """

    post = models.OneToOneField(CandidatePost, on_delete=models.CASCADE, primary_key=True, related_name="annotation")

    # LLM, paper section 3.3 (Challenging Stereotypes).
    quality = models.JSONField(
        null=True,
        blank=True,
        help_text="The prompt's flags, name -> probability 0..1 (prompt version 1's true/false as 1.0/0.0): "
        "has_enough_context, is_political_social, is_niche, is_logistical, is_frivolous, is_sarcastic, is_outrage, "
        "is_conspiratorial, is_pessimistic, is_nsfw.",
    )
    political_orientation = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(7)],
        help_text="1 = extremely liberal, 4 = moderate, 7 = extremely conservative; empty: not applicable.",
    )
    issue_opinions = models.JSONField(
        null=True,
        blank=True,
        help_text="Issue -> the post's position 1..5 as the paper's prompt defines it (5 = favourable to Trump, "
        "trusts media, more immigration, pro abortion rights, supports Israel, concerned about climate, racism a "
        "major problem, supports the military, positive about the economy), or null when not applicable.",
    )
    ideologically_surprising = models.BooleanField(null=True, blank=True)
    bridging = models.BooleanField(null=True, blank=True, help_text="The prompt's is_bridging (section 3.3).")
    # LLM, paper section 3.2 (Diverse Approval).
    approval_republican = models.FloatField(
        null=True, blank=True, help_text="1..5: how valuable, interesting and engaging an average Republican finds it."
    )
    approval_democrat = models.FloatField(
        null=True, blank=True, help_text="1..5: how valuable, interesting and engaging an average Democrat finds it."
    )
    national_interest = models.BooleanField(null=True, blank=True, help_text="Of national interest to a U.S. audience.")
    # Classifiers.
    civic = models.FloatField(null=True, blank=True, help_text="Probability the post is civic/political (0..1).")
    toxicity = models.FloatField(null=True, blank=True, help_text="Toxicity probability (0..1).")
    # Provenance.
    llm_model = models.CharField(max_length=200, blank=True)
    prompt_version = models.CharField(max_length=50, blank=True)
    classifier_version = models.CharField(max_length=300, blank=True)
    annotated_at = models.DateTimeField(null=True, blank=True, help_text="When the valid LLM annotation was stored.")
    classified_at = models.DateTimeField(null=True, blank=True)
    # LLM bookkeeping: what the valid annotation cost, and the state of the attempts.
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=0, help_text="At the configured prices.")
    llm_status = models.CharField(max_length=10, choices=LLMStatus.choices, default=LLMStatus.PENDING)
    llm_attempts = models.PositiveSmallIntegerField(default=0, help_text="LLM calls made for this post so far.")
    llm_error = models.TextField(blank=True, help_text="Why the last attempt failed.")
    llm_claimed_at = models.DateTimeField(null=True, blank=True, help_text="When a worker took it (in flight).")
    llm_failed_at = models.DateTimeField(null=True, blank=True)

    objects = PostAnnotationQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["llm_status"], name="postannotation_llm_pending", condition=Q(llm_status="pending")),
            models.Index(fields=["annotated_at"], name="postannotation_annotated_at"),
            models.Index(fields=["llm_failed_at"], name="postannotation_failed_at"),
        ]

    def __str__(self) -> str:
        return f"annotation of {self.post_id} ({self.llm_status})"


class TextEmbedding(models.Model):
    """A text's sentence embedding, stored once per text (``rankers.models.text_hash``) whatever shows it.

    ``vector`` is float32 little-endian, L2-normalized (384 values for MiniLM); read many at once with
    ``rankers.content.embeddings.embedding_matrix``.
    """

    text_hash = models.CharField(max_length=64, primary_key=True)
    model = models.CharField(max_length=200, help_text="The encoder that made the vector.")
    vector = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.model} {self.text_hash[:12]}"


class CandidatePool(models.Model):
    """The global pool of one inserting arm's ranker on one platform, rebuilt by ``refresh_queues``.

    ``candidates`` holds each post as the ranker reads it (``rankers.content.inventory.candidate_row``), in the
    pool's order; serving reads the whole row once a minute per web process, never a query per post.
    """

    ranker_key = models.CharField(max_length=50, choices=[(arm, arm) for arm in INSERTING_ARMS])
    platform = models.CharField(max_length=20, choices=[(p, PLATFORM_LABELS[p]) for p in PLATFORMS])
    built_at = models.DateTimeField(default=timezone.now)
    newest_post_at = models.DateTimeField(
        null=True, blank=True, help_text="When the newest post of the arm's sources on this platform was posted."
    )
    candidates = models.JSONField(default=list, blank=True)
    default_ids = ArrayField(
        models.CharField(max_length=40),
        default=list,
        blank=True,
        help_text="The non-personalized order: what a participant without a queue is offered.",
    )
    size = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["ranker_key", "platform"], name="candidatepool_unique")]

    def __str__(self) -> str:
        return f"{self.ranker_key} pool on {self.platform} ({self.size})"


class ParticipantQueue(models.Model):
    """One participant's personalized queue for their inserting arm on one platform: candidate ids in order.

    The ids are those of the platform's ``CandidatePool`` (``prc-<post id>``); a queue with none left in the
    pool falls back to the pool's own order at serving time.
    """

    participant_id = models.CharField(max_length=32, help_text="Participant.public_id (pseudonymous).")
    ranker_key = models.CharField(max_length=50)
    platform = models.CharField(max_length=20)
    built_at = models.DateTimeField(default=timezone.now)
    candidate_ids = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    personalized = models.BooleanField(
        default=True, help_text="False: the participant had no history or baseline answers; the pool's order."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["participant_id", "ranker_key", "platform"], name="participantqueue_unique"
            ),
        ]
        indexes = [models.Index(fields=["ranker_key", "platform", "built_at"], name="participantqueue_built")]

    def __str__(self) -> str:
        return f"{self.participant_id} {self.ranker_key} {self.platform}"
