"""Instruments and their questions, waves and their windows, invitations, responses and the message log.

Everything here is keyed by the participant row (pseudonymous ``public_id`` in exports); contact
data stays in ``participants`` and is only read at the moment an email is sent.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone

from participants.models import Participant, Study


class Instrument(models.Model):
    """A questionnaire: an ordered list of questions, loaded from ``surveys/library.py``."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    version = models.CharField(max_length=20, default="1")

    def __str__(self) -> str:
        return self.name


class Question(models.Model):
    class Kind(models.TextChoices):
        SINGLE = "single", "Single choice"
        MULTIPLE = "multiple", "Multiple choice"
        LIKERT = "likert", "Likert scale (one or more statements)"
        SLIDER = "slider", "Slider (one or more rows)"
        THERMOMETER = "thermometer", "Feeling thermometer 0-100"
        NUMERIC = "numeric", "Number"
        TEXT = "text", "Free text"
        HEADLINES = "headlines", "True / false / unsure news headlines"

    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="questions")
    key = models.SlugField(max_length=60, help_text="Stable name used in answers, exports and indexes.")
    position = models.PositiveIntegerField()
    page = models.PositiveIntegerField(default=1, help_text="Survey page the question is shown on.")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    text = models.TextField(help_text="Wording; [inparty], [outparty], [inparty_candidate], [party_id] are piped.")
    options = models.JSONField(default=list, blank=True, help_text='Choices: [{"value": ..., "label": ...}].')
    items = models.JSONField(
        default=list,
        blank=True,
        help_text='Statements or rows: [{"key": ..., "text": ...}]; headlines add "true": true/false.',
    )
    min_value = models.IntegerField(null=True, blank=True)
    max_value = models.IntegerField(null=True, blank=True)
    min_label = models.CharField(max_length=100, blank=True)
    max_label = models.CharField(max_length=100, blank=True)
    allow_not_applicable = models.BooleanField(default=False, help_text="Rows may be marked 'Not applicable'.")
    write_in_option = models.CharField(
        max_length=50, blank=True, help_text="The option that asks the participant to specify (e.g. 'other')."
    )
    required = models.BooleanField(default=True)
    show_if = models.JSONField(
        default=dict, blank=True, help_text='Condition on an earlier answer: {"question": key, "in": [values]}.'
    )

    class Meta:
        ordering = ["instrument", "position"]
        constraints = [
            models.UniqueConstraint(fields=["instrument", "key"], name="question_unique_key"),
            models.UniqueConstraint(fields=["instrument", "position"], name="question_unique_position"),
        ]

    def __str__(self) -> str:
        return f"{self.instrument.slug}:{self.key}"


class Wave(models.Model):
    """One survey round of a study: an instrument, an open window and who is invited."""

    class Kind(models.TextChoices):
        BASELINE = "baseline"
        MIDLINE = "midline"
        ENDLINE = "endline"
        OTHER = "other"

    class Mode(models.TextChoices):
        INTERNAL = "internal", "Our own survey pages"
        EXTERNAL = "external", "External survey tool (signed completion callback)"

    class Target(models.TextChoices):
        CONSENTED = "consented", "Everyone who consented"
        INSTALLED = "installed", "Consented with the extension installed"
        INCLUDED = "included", "Included participants (installed a week and baseline done)"

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="waves")
    slug = models.SlugField()
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="waves")
    mode = models.CharField(max_length=20, choices=Mode.choices, default=Mode.INTERNAL)
    external_url = models.URLField(
        max_length=1000, blank=True, help_text="External mode: survey link; {pid} and {wave} are filled in."
    )
    callback_secret = models.CharField(
        max_length=200, blank=True, help_text="External mode: HMAC-SHA256 key of the completion callback."
    )
    opens_at = models.DateTimeField(null=True, blank=True, help_text="Fixed window: opens (inclusive).")
    closes_at = models.DateTimeField(null=True, blank=True, help_text="Fixed window: closes (exclusive).")
    opens_after_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Rolling window: opens this many days after signup (0 = at signup)."
    )
    open_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Rolling window: stays open this many days (empty = no end)."
    )
    target = models.CharField(max_length=20, choices=Target.choices, default=Target.INSTALLED)
    max_reminders = models.PositiveIntegerField(default=3)
    reminder_interval_days = models.PositiveIntegerField(default=3)
    payment_amount = models.DecimalField(
        max_digits=8, decimal_places=2, default=Decimal("0"), help_text="Paid for completing this wave."
    )
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["study", "opens_after_days", "opens_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["study", "slug"], name="wave_unique_slug"),
            models.CheckConstraint(
                condition=Q(opens_at__isnull=False) | Q(opens_after_days__isnull=False),
                name="wave_has_window",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.study.slug}/{self.slug}"

    def window_for(self, signup_at: dt.datetime) -> tuple[dt.datetime, dt.datetime | None]:
        """When this wave opens and closes (None: never) for a participant who signed up at ``signup_at``.

        A rolling window counts whole days in the study's timezone: "7 days after signup" opens at
        midnight local time seven days after the signup day, so everyone gets a full first day.
        """
        if self.opens_at is not None:  # fixed dates: no need for the study's timezone
            return self.opens_at, self.closes_at
        opens, closes = self.window_on(signup_at.astimezone(zoneinfo.ZoneInfo(self.study.timezone)).date())
        return (signup_at if opens is None else opens), closes

    def window_on(self, signup_day: dt.date) -> tuple[dt.datetime | None, dt.datetime | None]:
        """``window_for`` for everyone who signed up on ``signup_day`` (study-local), which is all it depends on
        but for one case: ``opens`` None means "at signup itself" (``opens_after_days`` 0). The scheduler
        computes it once per signup day and lets PostgreSQL join it onto the participants."""
        if self.opens_at is not None:
            return self.opens_at, self.closes_at
        tz = zoneinfo.ZoneInfo(self.study.timezone)
        days = self.opens_after_days or 0
        start_day = signup_day + dt.timedelta(days=days)
        opens = None if days == 0 else dt.datetime.combine(start_day, dt.time.min, tzinfo=tz)
        if self.open_days is None:
            return opens, None
        closes = dt.datetime.combine(start_day + dt.timedelta(days=self.open_days + 1), dt.time.min, tzinfo=tz)
        return opens, closes

    def is_open_for(self, signup_at: dt.datetime, at: dt.datetime) -> bool:
        opens, closes = self.window_for(signup_at)
        return opens <= at and (closes is None or at < closes)


class InvitationQuerySet(models.QuerySet["Invitation"]):
    def awaiting(self) -> InvitationQuerySet:
        """Invitations that may still receive a message: not completed, cancelled or expired."""
        return self.filter(completed_at__isnull=True, cancelled_at__isnull=True, expired_at__isnull=True)


class Invitation(models.Model):
    """A participant's place in a wave: invited, reminded, completed, cancelled or expired (one row)."""

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="survey_invitations")
    wave = models.ForeignKey(Wave, on_delete=models.CASCADE, related_name="invitations")
    opens_at = models.DateTimeField()
    closes_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    invited_at = models.DateTimeField(null=True, blank=True)
    reminders_sent = models.PositiveIntegerField(default=0)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    next_reminder_at = models.DateTimeField(null=True, blank=True, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=50, blank=True)
    reminders_cancelled = models.PositiveIntegerField(
        default=0, help_text="Reminders that were still due when completion or withdrawal stopped them."
    )
    expired_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["participant", "wave"], name="invitation_once_per_wave")]

    def __str__(self) -> str:
        return f"{self.wave} → {self.participant_id}"

    @property
    def status(self) -> str:
        if self.completed_at:
            return "completed"
        if self.cancelled_at:
            return "cancelled"
        if self.expired_at:
            return "expired"
        return "invited" if self.invited_at else "scheduled"

    def is_open(self, at: dt.datetime) -> bool:
        return self.opens_at <= at and (self.closes_at is None or at < self.closes_at)


class Response(models.Model):
    """A participant's answers to one wave; saved page by page, completed once."""

    class Source(models.TextChoices):
        INTERNAL = "internal"
        EXTERNAL = "external"

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="survey_responses")
    wave = models.ForeignKey(Wave, on_delete=models.PROTECT, related_name="responses")
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.INTERNAL)
    answers = models.JSONField(default=dict, blank=True)
    piping = models.JSONField(default=dict, blank=True, help_text="Party words used in this response's wording.")
    page = models.PositiveIntegerField(default=1, help_text="Next page to show (save and resume).")
    started_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    item_scores = models.JSONField(default=dict, blank=True, help_text="Numeric coding of every scored item.")
    indexes = models.JSONField(default=dict, blank=True, help_text="Raw outcome indexes of supplementary 1.4.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["participant", "wave"], name="response_once_per_wave")]
        indexes = [models.Index(fields=["wave", "completed_at"])]

    def __str__(self) -> str:
        return f"{self.wave} / {self.participant_id}"


class MessageLog(models.Model):
    """Every message the platform sent (or tried to), one row per attempt: the send log."""

    class Kind(models.TextChoices):
        INVITATION = "invitation"
        REMINDER = "reminder"
        MONTHLY_UPDATE = "monthly_update"

    class Channel(models.TextChoices):
        EMAIL = "email"
        EXTENSION = "extension"

    class Status(models.TextChoices):
        SENT = "sent"
        FAILED = "failed"
        SKIPPED = "skipped", "Skipped (no address)"

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="survey_messages")
    wave = models.ForeignKey(Wave, on_delete=models.SET_NULL, null=True, blank=True, related_name="messages")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    channel = models.CharField(max_length=20, choices=Channel.choices)
    status = models.CharField(max_length=20, choices=Status.choices)
    key = models.CharField(max_length=200, unique=True, help_text="One send per key: a rerun never sends twice.")
    subject = models.CharField(max_length=200, blank=True)
    error = models.CharField(max_length=300, blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.channel} {self.status} {self.participant_id}"


# --- in-feed questions (supplementary section 2) ---------------------------------------------------


class InFeedQuestion(models.Model):
    """One question of the study's in-feed set; one is drawn per participant per week (``surveys.infeed``)."""

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="in_feed_questions")
    key = models.SlugField(max_length=60, help_text="Stable name used in answers and reports.")
    text = models.TextField(help_text="Wording; [outparty], [inparty_candidate], [platform] ... are piped.")
    options = models.JSONField(help_text='Choices, in display order: [{"value": ..., "label": ...}].')
    asked_from = models.DateField(null=True, blank=True, help_text="First day it may be drawn (study-local).")
    asked_until = models.DateField(null=True, blank=True, help_text="Last day it may be drawn (inclusive).")
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "key"], name="infeed_question_unique_key")]
        ordering = ["study", "key"]

    def __str__(self) -> str:
        return self.key

    def is_asked_on(self, day: dt.date) -> bool:
        return (
            self.active
            and (self.asked_from is None or day >= self.asked_from)
            and (self.asked_until is None or day <= self.asked_until)
        )

    def option_values(self) -> list[Any]:
        return [option["value"] for option in self.options]


class InFeedPrompt(models.Model):
    """One participant's question of one week: when and where it was offered, and its answer or dismissal."""

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="in_feed_prompts")
    question = models.ForeignKey(InFeedQuestion, on_delete=models.PROTECT, related_name="prompts")
    sequence = models.PositiveIntegerField(help_text="1 for the participant's first prompt, then 2, 3, ...")
    platform = models.CharField(max_length=20, help_text="The first platform used when it was due.")
    first_shown_on = models.DateField(help_text="Study-local day it first appeared.")
    last_shown_on = models.DateField()
    days_shown = models.PositiveSmallIntegerField(default=1, help_text="Days it was offered (at most 3).")
    text = models.TextField(help_text="The wording shown, piped for this participant.")
    created_at = models.DateTimeField(default=timezone.now)
    answer = models.JSONField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    dismissed_at = models.DateTimeField(null=True, blank=True)
    client_key = models.CharField(
        max_length=100, blank=True, help_text="The extension's key of the answer or dismissal."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["participant", "sequence"], name="infeed_prompt_unique_sequence"),
            models.UniqueConstraint(
                fields=["participant", "client_key"],
                condition=~Q(client_key=""),
                name="infeed_prompt_unique_client_key",
            ),
            models.CheckConstraint(
                condition=Q(answered_at__isnull=True) | Q(dismissed_at__isnull=True), name="infeed_answer_or_dismissal"
            ),
        ]
        indexes = [models.Index(fields=["first_shown_on"])]

    @property
    def closed(self) -> bool:
        return self.answered_at is not None or self.dismissed_at is not None


class EffectRun(models.Model):
    """One computation of a study's effect estimates (nightly, or by hand), with its progress and results.

    ``estimates`` holds every estimate, per arm included; what a page shows depends on blinding
    (``surveys.effects.visible``), never on what was stored.
    """

    class Status(models.TextChoices):
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="effect_runs")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    total = models.PositiveIntegerField(default=0, help_text="Estimates to compute.")
    done = models.PositiveIntegerField(default=0, help_text="Estimates computed so far.")
    estimates = models.JSONField(default=list, blank=True)
    notes = models.JSONField(default=list, blank=True, help_text="What could not be estimated, and why.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["study"], condition=Q(status="running"), name="effect_run_one_running_per_study"
            )
        ]

    @property
    def percent_done(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0
