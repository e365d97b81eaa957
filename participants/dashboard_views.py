"""Research dashboard pages: parse the filter, check access, run the queries, render."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any

import plotly
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from participants import charts, dashboard
from participants.forms import StudyPeriodFilterForm
from participants.models import Study
from participants.roles import researcher_required


class FunnelFilterForm(StudyPeriodFilterForm):
    default_days = 30
    field_order = ["start", "end", "study"]


def index(request: HttpRequest) -> HttpResponse:
    return redirect("dashboards:funnel")


@require_GET
@researcher_required
def funnel(request: HttpRequest) -> HttpResponse:
    form = FunnelFilterForm.from_query(request.GET.dict())
    if not form.is_valid():
        return render(request, "dashboards/funnel.html", {"form": form}, status=400)
    context = funnel_context(form.cleaned_data["study"], form.cleaned_data["start"], form.cleaned_data["end"])
    return render(request, "dashboards/funnel.html", {"form": form, **context})


def funnel_context(study: Study, start: dt.date, end: dt.date) -> dict[str, Any]:
    rows = dashboard.funnel_rows(study, start, end)
    figure = charts.enrolment_figure(dashboard.daily_enrolment(study, start, end), start, end)
    return {
        "study": study,
        "funnel": rows,
        "total": dashboard.funnel_total(rows),
        "stage_labels": list(dashboard.STAGE_LABELS.values()),
        "consort": dashboard.consort_rows(study, start, end),
        "enrolment_chart": charts.figure_html(figure, div_id="enrolment-chart"),
    }


@functools.cache
def _plotly_js_path() -> Path:
    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


@require_GET
def plotly_js(request: HttpRequest) -> FileResponse:
    """plotly.js from the installed package, so pages work with no internet and no CDN."""
    response = FileResponse(_plotly_js_path().open("rb"), content_type="text/javascript")
    response["Cache-Control"] = f"public, max-age={7 * 24 * 3600}"
    return response
