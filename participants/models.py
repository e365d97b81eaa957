"""Studies, arms, recruitment sources, participants and everything that follows one person.

Only this app holds contact data (``Participant.email``). Everything other apps
store is keyed by ``Participant.public_id``, a pseudonymous identifier.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from participants import validators
from participants.paper import CapRule, cap_rule
from participants.screening import default_screener_rules
from participants.vendors import VENDOR_CHOICES
from prc_site.lib.hashing import keyed_hash


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def hash_vendor_pid(vendor_pid: str) -> str:
    """The keyed hash that recognises a vendor id again after the id itself is erased."""
    return keyed_hash(vendor_pid, purpose="vendor_pid") if vendor_pid else ""


def new_public_id() -> str:
    return "p_" + secrets.token_hex(8)


class PayoutMethod(models.TextChoices):
    """How money reaches a participant; the payout export writes one file format per method."""

    GIFT_CARD = "gift_card", "Gift card (provider CSV)"
    PROLIFIC = "prolific", "Prolific bonus"


class Study(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        RECRUITING = "recruiting"
        RUNNING = "running"
        CLOSED = "closed"

    # Recruitment continued while the study ran, as in the paper: vendor links open in both.
    SIGNUP_STATUSES = (Status.RECRUITING, Status.RUNNING)

    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    timezone = models.CharField(
        max_length=64,
        default="America/New_York",
        choices=validators.timezone_choices,
        validators=[validators.validate_timezone],
        help_text="The study's local days (dashboards, rollups) follow this time zone.",
    )
    baseline_days = models.PositiveIntegerField(
        default=14,
        help_text="Days after the extension's first installation during which every participant is served control.",
    )
    inclusion_days = models.PositiveIntegerField(
        default=7, help_text="Days the extension must stay installed before a participant counts as included."
    )
    inclusion_needs_baseline = models.BooleanField(
        default=True,
        help_text="Include a participant only once the baseline survey is also done (as the paper does).",
    )
    rank_hold_ms = models.PositiveIntegerField(
        default=500,
        help_text="The full hold: once the ramp is over, every /rank answer, in every arm, goes out this many ms"
        " after receipt.",
    )
    ramp_days = models.PositiveIntegerField(
        default=14,
        help_text="Days after installation over which the hold rises linearly from 0 to the full hold."
        " At most the baseline days, so that treatment never runs under less lag than baseline.",
    )
    strata_fields = models.JSONField(
        default=list,
        blank=True,
        validators=[validators.validate_strata_fields],
        help_text='Screener answers that define randomization strata, e.g. ["party"]. Fixed once recruitment starts.',
    )
    screener_rules = models.JSONField(
        default=default_screener_rules,
        blank=True,
        validators=[validators.validate_screener_rules],
        help_text="Eligibility rules: allowed_devices, require_chrome, required_platforms_any, min_desktop_share,"
        " require_interest. Missing keys take the Table S16 defaults.",
    )
    randomization_seed = models.CharField(
        max_length=128, blank=True, help_text="Secret; only its hash is shown. Fixed once recruitment starts."
    )
    randomization_seed_hash = models.CharField(max_length=64, blank=True, editable=False)
    enrolment_code_ttl_hours = models.PositiveIntegerField(default=72)
    payment_cap = models.DecimalField(
        max_digits=8,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Most a participant can be credited in all (surveys and adjustments; lottery prizes apart).",
    )
    payout_days = models.PositiveIntegerField(
        default=30, help_text="Payments are sent within this many days of being earned (told to participants)."
    )
    # What the screener's interest question promises (Table S16), so that people opt in knowing the commitment.
    run_by = models.CharField(
        max_length=200,
        default="researchers at a university",
        help_text='Who runs it, e.g. "researchers at UC Berkeley".',
    )
    commitment_months = models.PositiveSmallIntegerField(
        default=5, help_text="Months the extension must stay installed (the paper: five)."
    )
    survey_payment = models.DecimalField(
        max_digits=8, decimal_places=2, default=Decimal("5.00"), help_text="Paid for each follow-up survey (USD)."
    )
    paid_surveys = models.PositiveSmallIntegerField(default=2, help_text="Follow-up surveys that are paid.")
    lottery_prize = models.DecimalField(
        max_digits=8,
        decimal_places=2,
        default=Decimal("500.00"),
        help_text="The prize of the lottery among those who keep the extension installed (0: no lottery).",
    )
    simulated = models.BooleanField(
        default=False,
        editable=False,
        help_text="A dress rehearsal (manage.py simulate_study): every participant in it is synthetic.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "studies"

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.randomization_seed:
            self.randomization_seed = secrets.token_hex(32)
        self.randomization_seed_hash = sha256_hex(self.randomization_seed)
        super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        if self.ramp_days > self.baseline_days:
            raise ValidationError(
                {"ramp_days": "The ramp must end by the end of the baseline days (the paper: before re-ranking began)."}
            )

    @property
    def is_closed(self) -> bool:
        """A closed study stops everything: no ranking, no collection, no new signups (figure S11's removal)."""
        return self.status == Study.Status.CLOSED

    def control_arm(self) -> Arm | None:
        return self.arms.filter(is_control=True).first()


class Arm(models.Model):
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="arms")
    name = models.CharField(max_length=100)
    slug = models.SlugField()
    ranker_key = models.CharField(max_length=100, help_text="The ranker plugin this arm runs.")
    allocation_weight = models.PositiveIntegerField(default=1)
    is_control = models.BooleanField(default=False)
    starts_facebook = models.DateField(null=True, blank=True, help_text="Intervention start on Facebook.")
    starts_reddit = models.DateField(null=True, blank=True, help_text="Intervention start on Reddit.")
    starts_twitter = models.DateField(null=True, blank=True, help_text="Intervention start on X/Twitter.")
    max_inserted = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most items the ranker may add to one slate; blank: no fixed number."
    )
    max_deleted = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most items the ranker may remove from one slate; blank: no fixed number."
    )
    max_inserted_pct = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(100)],
        help_text="Most inserted items, as a % of the posts shown (100: no limit); blank: the paper's rule for"
        " this ranker (Add News 15, Challenging Stereotypes 20, Perspective arms 0).",
    )
    max_deleted_pct = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(100)],
        help_text="Most removed items, as a % of the items the ranker could move; blank: the paper's rule.",
    )
    ranker_config = models.JSONField(
        default=dict,
        blank=True,
        validators=[validators.validate_json_object],
        help_text="Settings the arm's ranker reads, as a JSON object (e.g. an external ranker's url).",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "slug"], name="arm_unique_slug_per_study"),
            models.CheckConstraint(condition=Q(allocation_weight__gt=0), name="arm_weight_positive"),
        ]
        ordering = ["study", "id"]

    def __str__(self) -> str:
        return f"{self.study.slug}/{self.slug}"

    def clean(self) -> None:
        problems = validators.arm_settings_problems(self.ranker_key, self.ranker_config)
        if problems:
            field = "ranker_key" if self.ranker_key not in validators.ranker_keys() else "ranker_config"
            raise ValidationError({field: problems})

    def start_date(self, platform: str) -> dt.date | None:
        """The arm's intervention start on ``platform``; whether it applies is ``rankers.serving.effective_arm``'s."""
        value: dt.date | None = getattr(self, f"starts_{platform}", None)
        return value

    def cap_rule(self) -> CapRule:
        return cap_rule(self.ranker_key, self.max_inserted_pct, self.max_deleted_pct)


class RecruitmentSource(models.Model):
    """A panel vendor (or ad channel) with its entry link and outbound redirects."""

    class Outcome(models.TextChoices):
        COMPLETE = "complete"
        SCREENOUT = "screenout"
        OVERQUOTA = "overquota"
        QUALITY = "quality"
        DUPLICATE = "duplicate"

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="sources")
    name = models.CharField(max_length=100)
    slug = models.SlugField()
    vendor = models.CharField(
        max_length=30,
        choices=VENDOR_CHOICES,
        default="other",
        help_text="Decides how the link builder writes the vendor's id placeholder.",
    )
    pid_param = models.CharField(
        max_length=50,
        default="pid",
        validators=[validators.validate_param_name],
        help_text="Inbound participant-id parameter (matched without regard to case), e.g. PROLIFIC_PID.",
    )
    complete_url = models.URLField(
        max_length=1000,
        blank=True,
        validators=[validators.validate_redirect_template],
        help_text="Where completes go back to the vendor; {pid} is replaced by the vendor's id.",
    )
    screenout_url = models.URLField(max_length=1000, blank=True, validators=[validators.validate_redirect_template])
    overquota_url = models.URLField(max_length=1000, blank=True, validators=[validators.validate_redirect_template])
    quality_url = models.URLField(max_length=1000, blank=True, validators=[validators.validate_redirect_template])
    duplicate_url = models.URLField(max_length=1000, blank=True, validators=[validators.validate_redirect_template])
    signing_secret = models.CharField(
        max_length=200, blank=True, help_text="If set, inbound links must carry a valid HMAC-SHA256 'sig'."
    )
    quota = models.PositiveIntegerField(null=True, blank=True, help_text="Most consented participants.")
    cost_per_complete = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal("0"))
    payout_method = models.CharField(
        max_length=20,
        choices=PayoutMethod.choices,
        default=PayoutMethod.GIFT_CARD,
        help_text="How participants from this source are paid.",
    )
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "slug"], name="source_unique_slug_per_study")]

    def __str__(self) -> str:
        return self.name

    def redirect_template(self, outcome: str) -> str:
        template: str = getattr(self, f"{outcome}_url")
        return template


class ParticipantQuerySet(models.QuerySet["Participant"]):
    def enrolled(self) -> ParticipantQuerySet:
        return self.filter(enrolled_at__isnull=False, withdrawn_at__isnull=True)

    def included(self) -> ParticipantQuerySet:
        return self.filter(included_at__isnull=False)

    def in_arm(self, arm: Arm) -> ParticipantQuerySet:
        return self.filter(assignment__arm=arm)

    def real(self) -> ParticipantQuerySet:
        """Without test participants: what every count, cost, rollup and export uses by default."""
        return self.filter(is_test=False)


class Participant(models.Model):
    class Stage(models.TextChoices):
        SCREENING = "screening"
        SCREENED_OUT = "screened_out"
        OVERQUOTA = "overquota"
        DUPLICATE = "duplicate"
        SCREENED_IN = "screened_in"
        CONSENTED = "consented"
        ENROLLED = "enrolled"
        WITHDRAWN = "withdrawn"

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="participants")
    source = models.ForeignKey(RecruitmentSource, on_delete=models.PROTECT, related_name="participants", null=True)
    vendor_pid = models.CharField(
        max_length=255,
        blank=True,
        help_text="The vendor's id, verbatim; erased on withdrawal under delete terms.",
    )
    vendor_pid_hash = models.CharField(
        max_length=64, blank=True, editable=False, help_text="Keyed hash of the vendor's id: recognises a re-entry."
    )
    public_id = models.CharField(max_length=32, unique=True, default=new_public_id, editable=False)
    email = models.EmailField(blank=True, help_text="Contact data: never leaves this app.")
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.SCREENING)
    screener_answers = models.JSONField(default=dict, blank=True)
    strata = models.JSONField(default=dict, blank=True)
    vendor_outcome = models.CharField(max_length=20, choices=RecruitmentSource.Outcome.choices, blank=True)
    vendor_outcome_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, help_text="Started screening.")
    screened_in_at = models.DateTimeField(null=True, blank=True)
    consented_at = models.DateTimeField(null=True, blank=True)
    enrolled_at = models.DateTimeField(null=True, blank=True, help_text="Extension first registered.")
    included_at = models.DateTimeField(
        null=True, blank=True, help_text="Extension kept installed long enough and baseline survey done."
    )
    baseline_completed_at = models.DateTimeField(
        null=True, blank=True, help_text="Baseline survey completed (written by the surveys app)."
    )
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawal_reason = models.TextField(blank=True, help_text="In the participant's words; erased with their data.")
    erased_at = models.DateTimeField(
        null=True, blank=True, help_text="When data collected so far was erased (withdrawal under delete terms)."
    )
    status_key_hash = models.CharField(
        max_length=64, blank=True, db_index=True, help_text="Hash of the status-page link key."
    )
    enrolment_code_hash = models.CharField(max_length=64, blank=True, db_index=True)
    enrolment_code_expires_at = models.DateTimeField(null=True, blank=True)
    enrolment_code_used_at = models.DateTimeField(null=True, blank=True)
    baseline_issue_positions = models.JSONField(default=dict, blank=True)
    ranker_survey = models.JSONField(
        default=dict,
        blank=True,
        help_text="Baseline answers as a PRC SurveyResponse (copied by the surveys app); rankers read it.",
    )
    is_test = models.BooleanField(
        default=False,
        db_index=True,
        editable=False,
        help_text="Made by a researcher to try the study: left out of counts, costs and exports; can be deleted.",
    )

    objects = ParticipantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "vendor_pid_hash"],
                condition=~Q(vendor_pid_hash=""),
                name="participant_unique_vendor_pid_hash",
            )
        ]
        indexes = [models.Index(fields=["study", "created_at"])]

    def __str__(self) -> str:
        return self.public_id

    def set_vendor_pid(self, vendor_pid: str) -> None:
        self.vendor_pid, self.vendor_pid_hash = vendor_pid, hash_vendor_pid(vendor_pid)

    @property
    def is_withdrawn(self) -> bool:
        return self.withdrawn_at is not None

    def signup_at(self) -> dt.datetime:
        """When the participant signed up: consent, else first contact. (The ranking baseline and the lag ramp
        count from the extension's first installation, ``enrolled_at``, instead.)"""
        return self.consented_at or self.created_at

    def days_since_signup(self, at: dt.datetime) -> float:
        return (at - self.signup_at()).total_seconds() / 86400

    def _current_consent_query(self, at: dt.datetime | None) -> models.QuerySet[ConsentRecord]:
        current = ConsentDocument.objects.current_for(self.study_id, at).values("id")[:1]
        return ConsentRecord.objects.filter(participant_id=self.pk, document_id=models.Subquery(current))

    def has_current_consent(self, at: dt.datetime | None = None) -> bool:
        """Whether this participant agreed to the consent version in force (one query).

        False once withdrawn, and False after researchers publish a newer version until the
        participant agrees to it: ranking and data collection ask this before doing anything.
        """
        if self.withdrawn_at is not None:
            return False
        return self._current_consent_query(at).exists()

    async def ahas_current_consent(self, at: dt.datetime | None = None) -> bool:
        if self.withdrawn_at is not None:
            return False
        return await self._current_consent_query(at).aexists()

    def set_vendor_outcome(self, outcome: str, at: dt.datetime | None = None) -> bool:
        """Write the terminal vendor outcome once; a later call never changes it. True if this call wrote it."""
        at = at or timezone.now()
        written = Participant.objects.filter(pk=self.pk, vendor_outcome="").update(
            vendor_outcome=outcome, vendor_outcome_at=at
        )
        if written:
            self.vendor_outcome, self.vendor_outcome_at = outcome, at
        else:
            self.refresh_from_db(fields=["vendor_outcome", "vendor_outcome_at"])
        return bool(written)


class Assignment(models.Model):
    """A participant's arm. Written once; a database trigger refuses updates."""

    participant = models.OneToOneField(Participant, on_delete=models.CASCADE, related_name="assignment")
    arm = models.ForeignKey(Arm, on_delete=models.PROTECT, related_name="assignments")
    stratum = models.CharField(
        max_length=200, help_text="Opaque code of the stratum (never the screener answers behind it)."
    )
    position = models.PositiveIntegerField(help_text="Index in the stratum's allocation sequence.")
    assigned_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["arm", "stratum", "position"], name="assignment_unique_slot"),
        ]


class StratumCounter(models.Model):
    """Next free position in one stratum's allocation sequence; locked row per signup."""

    study = models.ForeignKey(Study, on_delete=models.PROTECT)
    stratum = models.CharField(max_length=200, help_text="Opaque code of the stratum.")
    next_position = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "stratum"], name="stratum_counter_unique")]


class ConsentDocumentQuerySet(models.QuerySet["ConsentDocument"]):
    def current_for(self, study_id: int, at: dt.datetime | None = None) -> ConsentDocumentQuerySet:
        """The study's documents in force at ``at``, newest first: ``.first()`` is the current one."""
        return self.filter(study_id=study_id, effective_at__lte=at or timezone.now()).order_by("-effective_at", "-id")


class ConsentDocument(models.Model):
    class OnWithdrawal(models.TextChoices):
        KEEP = "keep", "Keep data collected so far"
        DELETE = "delete", "Delete data collected so far"

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="consent_documents")
    version = models.CharField(max_length=20)
    title = models.CharField(max_length=200, default="Informed consent")
    text = models.TextField()
    questions = models.JSONField(
        default=list,
        blank=True,
        validators=[validators.validate_consent_questions],
        help_text='Checkbox statements the participant must agree to, as a JSON list, e.g. ["I am 18 or older"].',
    )
    effective_at = models.DateTimeField(default=timezone.now)
    on_withdrawal = models.CharField(max_length=10, choices=OnWithdrawal.choices, default=OnWithdrawal.KEEP)

    objects = ConsentDocumentQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "version"], name="consent_unique_version")]
        ordering = ["-effective_at"]

    def __str__(self) -> str:
        return f"{self.study.slug} consent {self.version}"


class ConsentRecord(models.Model):
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="consents")
    document = models.ForeignKey(ConsentDocument, on_delete=models.PROTECT, related_name="records")
    given_at = models.DateTimeField(default=timezone.now)
    ip_hash = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    answers = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["participant", "document"], name="consent_once_per_version"),
        ]


class ExtensionInstall(models.Model):
    """One installed copy of the extension, with its hashed token."""

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="installs")
    install_key = models.CharField(
        max_length=100, help_text="Stable id the extension sends; makes register idempotent."
    )
    token_hash = models.CharField(max_length=64, unique=True)
    extension_version = models.CharField(max_length=50, blank=True)
    installed_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    uninstalled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["participant", "install_key"], name="install_unique_key"),
        ]

    @staticmethod
    def hash_token(token: str) -> str:
        return sha256_hex(token)


class Heartbeat(models.Model):
    """The extension is alive: one row per ping (append-only)."""

    install = models.ForeignKey(ExtensionInstall, on_delete=models.CASCADE, related_name="heartbeats")
    at = models.DateTimeField(default=timezone.now, db_index=True)
    platform = models.CharField(max_length=20, blank=True)
    active_seconds = models.PositiveIntegerField(default=0)
    client_key = models.CharField(
        max_length=100, blank=True, help_text="Stable id the extension sends; a repeated ping is stored once."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["install", "client_key"], condition=~Q(client_key=""), name="heartbeat_unique_client_key"
            )
        ]


class PaymentQuerySet(models.QuerySet["Payment"]):
    def counted(self) -> PaymentQuerySet:
        """Entries that are or will be money for the participant (not cancelled, not failed for good)."""
        return self.exclude(status=Payment.Status.CANCELLED)

    def capped(self) -> PaymentQuerySet:
        """Entries that count towards the study's per-participant cap (lottery prizes do not)."""
        return self.counted().exclude(kind=Payment.Kind.LOTTERY)


class Payment(models.Model):
    """Payments ledger: one row per credit; the idempotency key makes a repeat harmless.

    Rows are written and moved only by ``participants.payments`` (the one audited service): the
    status follows ``TRANSITIONS``, and a database trigger refuses any change to a row's substance
    and any move out of ``paid``, so a paid entry can never be paid again.
    """

    class Status(models.TextChoices):
        OWED = "owed"
        APPROVED = "approved"
        PAID = "paid"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Kind(models.TextChoices):
        SURVEY = "survey", "Survey completed"
        LOTTERY = "lottery", "Lottery prize"
        ADJUSTMENT = "adjustment", "Manual adjustment"

    # The one rule of which status may follow which; failed entries may be approved again to retry.
    TRANSITIONS: dict[str, tuple[str, ...]] = {
        Status.OWED: (Status.APPROVED, Status.CANCELLED),
        Status.APPROVED: (Status.PAID, Status.FAILED, Status.CANCELLED),
        Status.FAILED: (Status.APPROVED, Status.CANCELLED),
        Status.PAID: (),
        Status.CANCELLED: (),
    }

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="payments")
    amount = models.DecimalField(max_digits=8, decimal_places=2)
    currency = models.CharField(max_length=3, default="USD")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.ADJUSTMENT)
    reason = models.CharField(max_length=200, help_text="Shown to the participant, e.g. 'Midline survey'.")
    method = models.CharField(max_length=20, choices=PayoutMethod.choices, default=PayoutMethod.GIFT_CARD)
    idempotency_key = models.CharField(max_length=200, unique=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OWED)
    created_at = models.DateTimeField(default=timezone.now)
    approved_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    status_note = models.CharField(max_length=300, blank=True, help_text="Why it was cancelled or failed.")
    provider_reference = models.CharField(max_length=200, blank=True, help_text="The payout provider's id.")
    batch = models.ForeignKey("PayoutBatch", on_delete=models.PROTECT, null=True, blank=True, related_name="payments")

    objects = PaymentQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=~Q(status="paid") | Q(paid_at__isnull=False), name="payment_paid_has_date"
            ),
        ]
        indexes = [models.Index(fields=["status", "method"])]

    def __str__(self) -> str:
        return f"{self.reference} {self.amount} {self.currency} ({self.status})"

    @property
    def reference(self) -> str:
        """The id written in payout files and expected back in the provider's results."""
        return f"pay-{self.pk}"

    def can_move_to(self, status: str) -> bool:
        return status in self.TRANSITIONS[self.status]


class PayoutBatch(models.Model):
    """One payout export: approved entries of one method, written to the provider's file once."""

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="payout_batches")
    method = models.CharField(max_length=20, choices=PayoutMethod.choices)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "payout batches"

    def __str__(self) -> str:
        return f"batch {self.pk} ({self.get_method_display()}, {self.created_at:%Y-%m-%d})"


class LotteryDraw(models.Model):
    """A recorded, reproducible prize draw among the participants eligible at draw time."""

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="lottery_draws")
    name = models.CharField(max_length=200, help_text="Shown to winners as the payment's reason.")
    prize = models.DecimalField(max_digits=8, decimal_places=2)
    winners_count = models.PositiveIntegerField(default=1)
    seed = models.CharField(max_length=128, help_text="Recorded so anyone can redo the draw.")
    enrolled_before = models.DateTimeField(
        null=True, blank=True, help_text="Only participants who installed the extension before this time."
    )
    eligible = models.JSONField(default=list, help_text="Public ids eligible at draw time, sorted.")
    winners = models.JSONField(default=list)
    drawn_at = models.DateTimeField(default=timezone.now)
    drawn_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True)

    class Meta:
        ordering = ["-drawn_at"]
        constraints = [models.CheckConstraint(condition=Q(prize__gt=0), name="lottery_prize_positive")]

    def __str__(self) -> str:
        return self.name


class VendorEvent(models.Model):
    """Every inbound link, outbound redirect and callback, recorded raw."""

    class Kind(models.TextChoices):
        INBOUND = "inbound"
        REDIRECT = "redirect"
        CALLBACK = "callback"
        REJECTED = "rejected"

    source = models.ForeignKey(RecruitmentSource, on_delete=models.SET_NULL, null=True, related_name="events")
    source_slug = models.CharField(max_length=100)
    participant = models.ForeignKey(Participant, on_delete=models.SET_NULL, null=True, related_name="vendor_events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    outcome = models.CharField(max_length=20, blank=True)
    url = models.TextField()
    params = models.JSONField(default=dict)
    note = models.CharField(max_length=300, blank=True)
    at = models.DateTimeField(default=timezone.now)


def page_copy_keys() -> list[tuple[str, str]]:
    from participants.copy import DEFAULT_COPY  # copy.py reads PageCopy rows: importing it at the top is a cycle

    return [(key, f"{key}: {title}") for key, (title, _) in DEFAULT_COPY.items()]


class PageCopy(models.Model):
    """Researcher-editable text for participant pages (keyed by page)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="page_copy")
    key = models.CharField(max_length=50, choices=page_copy_keys, help_text="The participant page this text is for.")
    title = models.CharField(max_length=200)
    body = models.TextField(help_text="Plain text; blank lines separate paragraphs.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "key"], name="page_copy_unique_key")]
        verbose_name_plural = "page copy"


class AnalysisPlan(models.Model):
    """A study's pre-registration, frozen once by a PI: what the analysis will be, fixed before the data.

    ``frozen`` is the document as frozen (analysis plan text, primary outcomes, arms and weights, the
    randomization seed's hash) and ``frozen_hash`` its SHA-256; ``current`` is the same document as it
    stands after every recorded deviation (``participants.prereg`` writes both, and the deviation log).
    """

    study = models.OneToOneField(Study, on_delete=models.PROTECT, related_name="analysis_plan")
    frozen = models.JSONField(help_text="The document as frozen.")
    frozen_hash = models.CharField(max_length=64, help_text="SHA-256 of the frozen document (canonical JSON).")
    current = models.JSONField(help_text="The document with every later deviation applied.")
    study_status_at_freeze = models.CharField(max_length=20, choices=Study.Status.choices)
    frozen_at = models.DateTimeField(default=timezone.now)
    frozen_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")

    def __str__(self) -> str:
        return f"{self.study.slug} plan {self.frozen_hash[:12]}"


class PlanDeviation(models.Model):
    """One change, after the freeze, to a setting the pre-registration fixed (append-only)."""

    plan = models.ForeignKey(AnalysisPlan, on_delete=models.PROTECT, related_name="deviations")
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    actor_label = models.CharField(max_length=200)
    setting = models.CharField(max_length=200, help_text='What changed, e.g. "arms.uprank.weight".')
    before = models.JSONField(null=True)
    after = models.JSONField(null=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]


class Unblinding(models.Model):
    """A PI revealed per-arm effect estimates of a study (until then only the pooled estimate shows)."""

    study = models.OneToOneField(Study, on_delete=models.PROTECT, related_name="unblinding")
    at = models.DateTimeField(default=timezone.now)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    reason = models.TextField()


class AuditEvent(models.Model):
    """Who did what, when. Append-only: a database trigger refuses updates and deletes."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    actor_label = models.CharField(max_length=200, help_text="'participant p_…', 'system', or a username.")
    action = models.CharField(max_length=100, db_index=True)
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=100)
    detail = models.JSONField(default=dict)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.object_type}:{self.object_id}"


class EventBatch(models.Model):
    """One batch of behaviour events as the extension sent it. Its key makes a repeat harmless: the
    unique constraint lets the first one in, and a repeat is answered with what the first one stored."""

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="event_batches")
    batch_key = models.CharField(max_length=100, help_text="Stable id the extension sends with the batch.")
    received_at = models.DateTimeField(default=timezone.now)
    extension_version = models.CharField(max_length=50, blank=True)
    n_events = models.PositiveIntegerField(default=0)
    n_accepted = models.PositiveIntegerField(default=0)
    rejected = models.JSONField(
        default=list, blank=True, help_text="[{index, code, message, field}] per event refused."
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["participant", "batch_key"], name="eventbatch_unique_key")]


class BehaviourEvent(models.Model):
    """One item view, engagement or per-minute activity ping from the extension (append-only).

    PostgreSQL holds a table range-partitioned by month on ``occurred_at`` (like the slate log), with
    primary key (id, occurred_at) and a trigger that refuses updates; rows leave only by erasure.
    ``participant_id`` is ``Participant.pk`` without a foreign key: the log is written in bulk and
    erased through ``participant_erasing``.
    """

    id = models.BigAutoField(primary_key=True)
    occurred_at = models.DateTimeField(help_text="When it happened on the participant's device (UTC).")
    received_at = models.DateTimeField(default=timezone.now)
    participant_id = models.BigIntegerField()
    study_id = models.IntegerField()
    batch_id = models.BigIntegerField(help_text="EventBatch.pk")
    platform = models.CharField(max_length=20)
    kind = models.CharField(max_length=20, help_text="view, engagement or activity.")
    action = models.CharField(max_length=30, blank=True, help_text="An engagement's type: like, share, comment...")
    item_id = models.CharField(max_length=255, blank=True)
    active_page = models.BooleanField(null=True, help_text="Activity pings: the platform was the active page.")
    user_active = models.BooleanField(null=True, help_text="Activity pings: the participant used mouse or keyboard.")
    extension_version = models.CharField(max_length=50, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["study_id", "occurred_at"], name="event_study_occurred_at"),
            models.Index(fields=["participant_id", "occurred_at"], name="event_participant_occurred_at"),
        ]


class DailyBehaviour(models.Model):
    """Daily active minutes and counts per participant and platform (``behaviour.daily_behaviour``'s rule),
    recomputed by the rollup; a study day is a calendar day in the study's time zone."""

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="daily_behaviour")
    study_id = models.IntegerField()
    day = models.DateField()
    platform = models.CharField(max_length=20)
    active_minutes = models.PositiveIntegerField(default=0)
    views = models.PositiveIntegerField(default=0)
    engagements = models.PositiveIntegerField(default=0)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["participant", "day", "platform"], name="dailybehaviour_unique_day")
        ]
        indexes = [models.Index(fields=["study_id", "day"], name="dailybehaviour_study_day")]


class DailyEventCount(models.Model):
    """Events per study, day, platform, kind and extension version: what the gap page reads."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="daily_event_counts")
    day = models.DateField()
    platform = models.CharField(max_length=20)
    kind = models.CharField(max_length=20)
    extension_version = models.CharField(max_length=50, blank=True)
    events = models.PositiveIntegerField(default=0)
    participants = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["study", "day", "platform", "kind", "extension_version"], name="dailyeventcount_unique"
            )
        ]


class Export(models.Model):
    """One export a researcher asked for: which datasets, in which format, and how far it has got.

    Built by the Celery task ``participants.tasks.build_export``; the file is a zip under ``PRC_EXPORT_DIR``.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        PARQUET = "parquet", "Parquet"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="exports")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    datasets = models.JSONField(default=list, help_text="Names of the datasets, in order.")
    format = models.CharField(max_length=10, choices=Format.choices, default=Format.PARQUET)
    identifiable = models.BooleanField(default=False, help_text="Includes the vendor ids and screener answers.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    dataset = models.CharField(max_length=50, blank=True, help_text="The dataset being written now.")
    datasets_done = models.PositiveIntegerField(default=0)
    rows_done = models.BigIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    file_name = models.CharField(max_length=200, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"export {self.pk} of {self.study} ({self.status})"
