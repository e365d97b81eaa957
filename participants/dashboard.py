"""Read-only queries behind the research dashboards. Each returns plain rows, aggregated in SQL.

Test participants are left out of every count and cost. The funnel and CONSORT counts follow one
cohort: the people who *started screening* in the date range
(``Participant.created_at``), and how far each of them got since. Days are the study's local days.
"""

from __future__ import annotations

import datetime as dt
import itertools
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate

from participants.models import Arm, Participant, Payment, PayoutBatch, RecruitmentSource, Study

STAGES = ("started", "screened_in", "consented", "installed", "included")
STAGE_LABELS = {
    "started": "Started screening",
    "screened_in": "Screened in",
    "consented": "Consented",
    "installed": "Installed extension",
    "included": "Included (installed a week, baseline survey done)",
}


@dataclass(frozen=True)
class FunnelRow:
    source: str
    started: int
    screened_in: int
    consented: int
    installed: int
    included: int
    completes: int
    cost: Decimal

    def counts(self) -> list[int]:
        return [self.started, self.screened_in, self.consented, self.installed, self.included]

    def conversions(self) -> list[float | None]:
        """Percent of the previous stage that reached each later stage (None when nobody was there)."""
        counts = self.counts()
        return [percent(after, before) for before, after in itertools.pairwise(counts)]

    def cells(self) -> list[tuple[int, float | None]]:
        """Each stage's count with the conversion into it from the stage before (None for the first)."""
        return list(zip(self.counts(), [None, *self.conversions()], strict=True))

    @property
    def cost_per_included(self) -> Decimal | None:
        return (self.cost / self.included).quantize(Decimal("0.01")) if self.included else None


@dataclass(frozen=True)
class ConsortRow:
    arm: str
    slug: str
    assigned: int
    installed: int
    included: int
    withdrawn: int


@dataclass(frozen=True)
class DailyRow:
    day: dt.date
    arm: str
    enrolled: int


def percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def local_bounds(study: Study, start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start 00:00, end+1 00:00) in the study's timezone: both dates are inclusive."""
    tz = zoneinfo.ZoneInfo(study.timezone)
    low = dt.datetime.combine(start, dt.time.min, tzinfo=tz)
    high = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return low, high


def _stage_counts(prefix: str, low: dt.datetime, high: dt.datetime) -> dict[str, Count]:
    """Count(...) expressions for every stage, over the relation ``prefix`` (e.g. "participants__")."""
    cohort = Q(**{f"{prefix}created_at__gte": low, f"{prefix}created_at__lt": high, f"{prefix}is_test": False})
    reached = {
        "started": Q(),
        "screened_in": Q(**{f"{prefix}screened_in_at__isnull": False}),
        "consented": Q(**{f"{prefix}consented_at__isnull": False}),
        "installed": Q(**{f"{prefix}enrolled_at__isnull": False}),
        "included": Q(**{f"{prefix}included_at__isnull": False}),
        "completes": Q(**{f"{prefix}vendor_outcome": RecruitmentSource.Outcome.COMPLETE}),
    }
    pk = f"{prefix}pk" if prefix else "pk"
    return {name: Count(pk, filter=cohort & condition) for name, condition in reached.items()}


def funnel_rows(study: Study, start: dt.date, end: dt.date) -> list[FunnelRow]:
    """One row per recruitment source (plus "Unknown" for people without one), largest first.

    Cost is what vendors bill: cost per complete times the completes they sent in the cohort.
    """
    low, high = local_bounds(study, start, end)
    sources = RecruitmentSource.objects.filter(study=study).annotate(**_stage_counts("participants__", low, high))
    rows = []
    for source in sources:
        counts = {name: getattr(source, name) for name in (*STAGES, "completes")}
        if source.active or counts["started"]:
            rows.append(FunnelRow(source=source.name, **counts, cost=source.cost_per_complete * counts["completes"]))
    unknown = Participant.objects.real().filter(study=study, source__isnull=True)
    unknown_counts = unknown.aggregate(**_stage_counts("", low, high))
    if unknown_counts["started"]:
        rows.append(FunnelRow(source="Unknown", **unknown_counts, cost=Decimal("0")))
    return sorted(rows, key=lambda row: (-row.started, row.source))


def funnel_total(rows: list[FunnelRow]) -> FunnelRow:
    return FunnelRow(
        source="Total",
        **{name: sum(getattr(row, name) for row in rows) for name in (*STAGES, "completes")},
        cost=sum((row.cost for row in rows), Decimal("0")),
    )


def consort_rows(study: Study, start: dt.date, end: dt.date) -> list[ConsortRow]:
    """Per arm, of the cohort: randomized, installed, included, withdrawn."""
    low, high = local_bounds(study, start, end)
    prefix = "assignments__participant__"
    cohort = Q(**{f"{prefix}created_at__gte": low, f"{prefix}created_at__lt": high, f"{prefix}is_test": False})
    arms = Arm.objects.filter(study=study).annotate(
        assigned=Count("assignments", filter=cohort),
        installed=Count("assignments", filter=cohort & Q(**{f"{prefix}enrolled_at__isnull": False})),
        included=Count("assignments", filter=cohort & Q(**{f"{prefix}included_at__isnull": False})),
        withdrawn=Count("assignments", filter=cohort & Q(**{f"{prefix}withdrawn_at__isnull": False})),
    )
    return [ConsortRow(arm.name, arm.slug, arm.assigned, arm.installed, arm.included, arm.withdrawn) for arm in arms]


def daily_enrolment(study: Study, start: dt.date, end: dt.date) -> list[DailyRow]:
    """Extensions first registered per local day and arm, for days in the range (not only the cohort)."""
    low, high = local_bounds(study, start, end)
    rows = (
        Participant.objects.real()
        .filter(study=study, enrolled_at__gte=low, enrolled_at__lt=high)
        .annotate(day=TruncDate("enrolled_at", tzinfo=zoneinfo.ZoneInfo(study.timezone)))
        .values("day", "assignment__arm__name")
        .annotate(enrolled=Count("pk"))
        .order_by("day", "assignment__arm__name")
    )
    return [DailyRow(row["day"], row["assignment__arm__name"] or "Unassigned", row["enrolled"]) for row in rows]


@dataclass(frozen=True)
class PaymentRow:
    label: str
    counts: dict[str, int]
    totals: dict[str, Decimal]

    def cells(self) -> list[tuple[int, Decimal]]:
        return [(self.counts.get(status, 0), self.totals.get(status, Decimal("0"))) for status in PAYMENT_STATUSES]


PAYMENT_STATUSES = tuple(Payment.Status.values)


def payment_rows(study: Study, start: dt.date, end: dt.date) -> list[PaymentRow]:
    """Entries earned in the range, per kind (and a total), counted and summed per status in one query."""
    low, high = local_bounds(study, start, end)
    grouped = (
        Payment.objects.filter(participant__study=study, created_at__gte=low, created_at__lt=high)
        .values("kind", "status")
        .annotate(n=Count("pk"), total=Sum("amount"))
    )
    counts: dict[str, dict[str, int]] = {kind: {} for kind in Payment.Kind.values}
    totals: dict[str, dict[str, Decimal]] = {kind: {} for kind in Payment.Kind.values}
    for row in grouped:
        counts[row["kind"]][row["status"]] = row["n"]
        totals[row["kind"]][row["status"]] = row["total"]
    rows = [PaymentRow(str(Payment.Kind(kind).label), counts[kind], totals[kind]) for kind in Payment.Kind.values]
    all_counts = {s: sum(r.counts.get(s, 0) for r in rows) for s in PAYMENT_STATUSES}
    all_totals = {s: sum((r.totals.get(s, Decimal("0")) for r in rows), Decimal("0")) for s in PAYMENT_STATUSES}
    return [*rows, PaymentRow("Total", all_counts, all_totals)]


@dataclass(frozen=True)
class BatchRow:
    batch: PayoutBatch
    entries: int
    total: Decimal
    paid: int
    failed: int


def batch_rows(study: Study, limit: int = 50) -> list[BatchRow]:
    batches = (
        PayoutBatch.objects.filter(study=study)
        .select_related("created_by")
        .annotate(
            entries=Count("payments"),
            total=Sum("payments__amount"),
            paid=Count("payments", filter=Q(payments__status=Payment.Status.PAID)),
            failed=Count("payments", filter=Q(payments__status=Payment.Status.FAILED)),
        )
        .order_by("-created_at")[:limit]
    )
    return [BatchRow(b, b.entries, b.total or Decimal("0"), b.paid, b.failed) for b in batches]


def ready_to_export(study: Study) -> dict[str, int]:
    """Approved entries not yet in a batch, per payout method."""
    rows = (
        Payment.objects.filter(participant__study=study, status=Payment.Status.APPROVED, batch__isnull=True)
        .values("method")
        .annotate(n=Count("pk"))
    )
    return {row["method"]: row["n"] for row in rows}
