"""Ranking dashboards: per-arm timelines, delivery and latency, and the slate inspector."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET

from participants.forms import StudyPeriodFilterForm
from participants.models import Study
from participants.paper import PLATFORM_LABELS, PLATFORMS
from participants.roles import PI, researcher_required
from rankers import charts, dashboard
from rankers.latency_audit import LATE_MARGIN_MS, LATE_SHARE_LIMIT, P50_TOLERANCE_MS
from rankers.models import Slate
from rankers.scoring import identity, readiness
from rankers.scoring import usage as scoring_usage
from rankers.scoring.backends import describe_backend

# A slate id as typed into the lookup box: a bigint fits 18 digits.
SLATE_ID = re.compile(r"[0-9]{1,18}")
USAGE_DAYS = 14  # days of paid scorer usage on the delivery page


def can_see_content(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Item text is participants' feed content: PIs only (read-only researchers see aggregates)."""
    return bool(getattr(user, "is_superuser", False)) or user.groups.filter(name=PI).exists()  # type: ignore[union-attr]


class RankingFilterForm(StudyPeriodFilterForm):
    default_days = 60
    field_order = ["study", "platform", "content_type", "start", "end"]

    platform = forms.ChoiceField(
        choices=[("", "All platforms"), *((p, PLATFORM_LABELS[p]) for p in PLATFORMS)], required=False
    )
    content_type = forms.ChoiceField(
        label="Content",
        choices=[("", "Posts and comments"), ("post", "Posts"), ("comment", "Comments")],
        required=False,
    )

    def filters(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "start": data["start"],
            "end": data["end"],
            "platform": data["platform"],
            "content_type": data["content_type"],
        }


def index(request: HttpRequest) -> HttpResponse:
    return redirect("rankers:timelines")


@require_GET
@researcher_required
def timelines(request: HttpRequest) -> HttpResponse:
    form = RankingFilterForm.from_request(request)
    if not form.is_valid():
        return render(request, "rankers/timelines.html", {"form": form}, status=400)
    context = timelines_context(form.cleaned_data["study"], **form.filters())
    return render(request, "rankers/timelines.html", {"form": form, **context})


def timelines_context(study: Study, **filters: Any) -> dict[str, Any]:
    points = dashboard.timeline_points(study, **filters)
    arms = dashboard.arm_labels(study, {p.arm_slug for p in points})
    figures = [
        charts.figure_html(
            charts.timeline_figure(points, metric=metric, arms=arms, start=filters["start"], end=filters["end"]),
            div_id=f"timeline-{metric.field}",
        )
        for metric in charts.TIMELINE_METRICS
    ]
    return {"study": study, "charts": figures, "has_data": bool(points), "days": len(points)}


@require_GET
@researcher_required
def delivery(request: HttpRequest) -> HttpResponse:
    form = RankingFilterForm.from_request(request)
    if not form.is_valid():
        return render(request, "rankers/delivery.html", {"form": form}, status=400)
    context = delivery_context(form.cleaned_data["study"], **form.filters())
    context["can_inspect"] = can_see_content(request.user)  # readers would only meet a refusal
    return render(request, "rankers/delivery.html", {"form": form, **context})


def delivery_context(study: Study, **filters: Any) -> dict[str, Any]:
    rows = dashboard.delivery_rows(study, **filters)
    arms = dashboard.arm_labels(study, {row.arm_slug for row in rows})
    rows = dashboard.in_arm_order(rows, arms)
    labels = dict(arms)
    reasons = sorted({reason for row in rows for reason in row.fallbacks})
    figures = [
        charts.figure_html(charts.intervened_figure(rows, arms=arms), div_id="delivery-intervened"),
        charts.figure_html(charts.fallback_figure(rows, arms=arms), div_id="delivery-fallbacks"),
        charts.figure_html(
            charts.latency_figure(rows, arms=arms, hold_ms=study.rank_hold_ms), div_id="delivery-latency"
        ),
    ]
    table = [
        {
            "row": row,
            "label": labels.get(row.arm_slug, row.arm_slug),
            "fallbacks": [row.fallbacks.get(reason, 0) for reason in reasons],
            "ranker_over_budget": row.ranker_p95_ms is not None and row.ranker_p95_ms > study.rank_hold_ms,
        }
        for row in rows
    ]
    scorer, scorer_is_baseline = describe_backend(settings.PRC_SCORER_BACKEND)
    service = dashboard.scoring_service()
    if service is not None:
        minutes = [
            (m.start, m.scored_share, m.counts.get("jobs_refused", 0), m.counts.get("jobs_expired", 0))
            for m in service.minutes
        ]
        figures.append(charts.figure_html(charts.scoring_figure(minutes), div_id="delivery-scoring"))
    audit = dashboard.latency_audit(study, **filters)
    return {
        "study": study,
        "audit": audit,
        "audit_rows": [
            {
                "cell": cell,
                "label": labels.get(cell.arm_slug, cell.arm_slug),
                "platform": _platform_label(cell.platform),
                "late_pct": None if cell.late_share is None else cell.late_share * 100,
            }
            for cell in (audit.cells if audit else [])
        ],
        "limits": {"p50_ms": P50_TOLERANCE_MS, "late_ms": LATE_MARGIN_MS, "late_share": LATE_SHARE_LIMIT * 100},
        "table": table,
        "reasons": reasons,
        "charts": figures,
        "hold_ms": study.rank_hold_ms,
        "scorer": scorer,
        "scorer_is_baseline": scorer_is_baseline,
        "scorer_verdict": readiness.verdict(identity()),
        "scorer_usage": scoring_usage.daily_usage(USAGE_DAYS),
        "usage_days": USAGE_DAYS,
        "scoring": service,
        "scoring_windows": [("last 5 minutes", service.last_5), ("last 60 minutes", service.last_60)]
        if service
        else [],
    }


def _platform_label(platform: str) -> str:
    return PLATFORM_LABELS.get(platform, platform) if platform else "All platforms"


@require_GET
@researcher_required
def slate_lookup(request: HttpRequest) -> HttpResponse:
    """The inspector's search box: ``?id=123`` goes to slate 123."""
    slate_id = request.GET.get("id", "").strip().lstrip("#")
    # ASCII digits only: str.isdigit() also takes "²" and Arabic-Indic digits, which int() refuses or reads.
    if not SLATE_ID.fullmatch(slate_id):
        return redirect("rankers:delivery")
    return redirect("rankers:slate", slate_id=int(slate_id))


@require_GET
@researcher_required
def slate_inspector(request: HttpRequest, slate_id: int) -> HttpResponse:
    if not can_see_content(request.user):
        raise PermissionDenied("Only PIs may see the content of participants' feeds.")
    slate = get_object_or_404(Slate, id=slate_id)
    return render(request, "rankers/slate.html", {"view": dashboard.slate_view(slate)})
