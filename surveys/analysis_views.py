"""The balance and attrition page (Tables S18, S19, figure S11, CONSORT) and the effects page (S1, S3)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from participants import balance, prereg
from participants import charts as participant_charts
from participants import dashboard as participant_dashboard
from participants.models import AnalysisPlan, Study
from participants.roles import researcher_required
from surveys import charts, dashboard, effects, tasks
from surveys.dashboard_views import StudyFilterForm


@require_GET
@researcher_required
def balance_page(request: HttpRequest) -> HttpResponse:
    form = StudyFilterForm.from_query(request.GET.dict())
    if not form.is_valid():
        return render(request, "dashboards/balance.html", {"form": form}, status=400)
    study, start, end = (form.cleaned_data[k] for k in ("study", "start", "end"))
    retention = balance.retention_curve(balance.stays(study), start, end)
    waves = [(r.wave, r.arm, r.invited, r.completed) for r in dashboard.wave_arm_rows(study)]
    context = {
        "form": form,
        "study": study,
        "balance": balance.balance_rows(effects.balance_subjects(study), effects.COVARIATES),
        "consort": balance.consort_flow(participant_dashboard.consort_rows(study, start, end), waves),
        "attrition": dashboard.attrition(study),
        "retention_chart": participant_charts.figure_html(
            participant_charts.retention_figure(retention), div_id="retention-chart"
        ),
    }
    return render(request, "dashboards/balance.html", context)


def _effects_context(study: Study) -> dict[str, Any]:
    running, finished = effects.latest_run(study)
    view = effects.shown(study, finished)
    return {
        "study": study,
        "running": running,
        "finished": finished,
        "estimates": view.estimates,
        "not_identified": view.not_identified,
        "unblinded": view.unblinded,
        "unblinding": getattr(study, "unblinding", None) if view.unblinded else None,
        "plan": AnalysisPlan.objects.filter(study=study).first(),
        "can_unblind": False,
        "effects_charts": [
            participant_charts.figure_html(figure, div_id=f"effects-chart-{unit}")
            for unit, figure in charts.effects_figures(view.estimates)
        ],
    }


@require_GET
@researcher_required
def effects_page(request: HttpRequest) -> HttpResponse:
    form = StudyFilterForm.from_query(request.GET.dict())
    if not form.is_valid():
        return render(request, "dashboards/effects.html", {"form": form}, status=400)
    context = _effects_context(form.cleaned_data["study"])
    context["can_unblind"] = request.user.has_perm(prereg.PI_PERMISSION)
    return render(request, "dashboards/effects.html", {"form": form, **context})


def _back_to_effects(study: Study) -> HttpResponse:
    return redirect(f"{reverse('surveys:effects')}?study={study.slug}")


@require_POST
@researcher_required
def recompute_effects(request: HttpRequest) -> HttpResponse:
    """Queue the study's estimates now (the nightly job, early); the page shows the run's progress."""
    study = get_object_or_404(Study, slug=request.POST.get("study", ""))
    transaction.on_commit(lambda: tasks.compute_study_effects.delay(study.pk))
    messages.info(request, "The estimates are being recomputed; this page shows their progress.")
    return _back_to_effects(study)


@require_POST
@researcher_required
def unblind_effects(request: HttpRequest) -> HttpResponse:
    """A PI reveals the per-arm estimates, with a reason (audited); anyone else is refused."""
    study = get_object_or_404(Study, slug=request.POST.get("study", ""))
    try:
        prereg.unblind(study=study, by=request.user, reason=request.POST.get("reason", ""))
    except prereg.PreregError as error:
        form = StudyFilterForm.from_query({"study": study.slug})
        form.is_valid()
        context = {"form": form, **_effects_context(study), "unblind_error": error.message}
        context["can_unblind"] = request.user.has_perm(prereg.PI_PERMISSION)
        status = 403 if "Only a PI" in error.message else 400
        return render(request, "dashboards/effects.html", context, status=status)
    return _back_to_effects(study)
