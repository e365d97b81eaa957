"""Research pages for behaviour data and exports: parse the filter, check access, make one call, render."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from participants import events
from participants.forms import StudyPeriodFilterForm
from participants.roles import researcher_required


class BehaviourFilterForm(StudyPeriodFilterForm):
    default_days = 28
    field_order = ["start", "end", "study"]


@require_GET
@researcher_required
def behaviour(request: HttpRequest) -> HttpResponse:
    """Where behaviour events suddenly dropped, per platform and per extension version (from the rollups)."""
    form = BehaviourFilterForm.from_request(request)
    if not form.is_valid():
        return render(request, "dashboards/behaviour.html", {"form": form}, status=400)
    study, start, end = (form.cleaned_data[key] for key in ("study", "start", "end"))
    gaps, totals = events.gap_report(study, start, end)
    return render(request, "dashboards/behaviour.html", {"form": form, "study": study, "gaps": gaps, "totals": totals})
