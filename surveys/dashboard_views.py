"""The survey dashboard page and the audited CSV export of responses."""

from __future__ import annotations

import csv

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from participants import charts as participant_charts
from participants.audit import record_audit
from participants.forms import StudyPeriodFilterForm
from participants.roles import EXPORT_IDENTIFIABLE, researcher_required
from surveys import charts, dashboard


class StudyFilterForm(StudyPeriodFilterForm):
    default_days = 365
    field_order = ["study", "start", "end"]


@require_GET
@researcher_required
def surveys_dashboard(request: HttpRequest) -> HttpResponse:
    form = StudyFilterForm.from_query(request.GET.dict())
    if not form.is_valid():
        return render(request, "dashboards/surveys.html", {"form": form}, status=400)
    study = form.cleaned_data["study"]
    totals = dashboard.wave_arm_rows(study)
    figure = charts.completion_figure(dashboard.daily_completions(study), totals)
    context = {
        "form": form,
        "study": study,
        "totals": totals,
        "attrition": dashboard.attrition(study),
        "completion_chart": participant_charts.figure_html(figure, div_id="completion-chart"),
    }
    return render(request, "dashboards/surveys.html", context)


@require_GET
@researcher_required
def responses_csv(request: HttpRequest) -> HttpResponse:
    """Every response of a study with pseudonymous ids; free text only for those allowed identifiable data.

    The export is audited: who, which study, whether free text was included, and how many rows.
    """
    form = StudyFilterForm.from_query(request.GET.dict())
    if not form.is_valid():
        return HttpResponse("Unknown study.", status=400, content_type="text/plain")
    study = form.cleaned_data["study"]
    free_text = request.GET.get("free_text") == "1" and request.user.has_perm(f"participants.{EXPORT_IDENTIFIABLE}")
    rows = list(dashboard.response_rows(study, free_text=free_text))
    columns = list(dict.fromkeys(key for row in rows for key in row)) or ["participant", "wave", "arm"]
    record_audit(
        action="export.survey_responses",
        obj=study,
        actor=request.user,
        detail={"study": study.slug, "rows": len(rows), "free_text": free_text, "columns": len(columns)},
    )

    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{study.slug}-survey-responses.csv"'
    writer = csv.DictWriter(response, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows(rows)
    return response


class InFeedFilterForm(StudyPeriodFilterForm):
    default_days = 28
    field_order = ["start", "end", "study"]


@require_GET
@researcher_required
def in_feed(request: HttpRequest) -> HttpResponse:
    form = InFeedFilterForm.from_query(request.GET.dict())
    if not form.is_valid():
        return render(request, "dashboards/in_feed.html", {"form": form}, status=400)
    study, start, end = (form.cleaned_data[k] for k in ("study", "start", "end"))
    by_arm, by_question = dashboard.in_feed_rows(study, start, end)
    context = {"form": form, "study": study, "by_arm": by_arm, "by_question": by_question}
    return render(request, "dashboards/in_feed.html", context)
