"""Research dashboard pages: parse the filter, check access, run the queries, render."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any

import plotly
from django import forms
from django.contrib import messages as django_messages
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from participants import charts, dashboard, payments
from participants.forms import StudyPeriodFilterForm
from participants.models import PayoutBatch, PayoutMethod, Study
from participants.roles import EXPORT_PAYOUTS, researcher_required, researcher_with_permission


class FunnelFilterForm(StudyPeriodFilterForm):
    default_days = 30
    field_order = ["start", "end", "study"]


def index(request: HttpRequest) -> HttpResponse:
    return redirect("dashboards:funnel")


@require_GET
@researcher_required
def funnel(request: HttpRequest) -> HttpResponse:
    form = FunnelFilterForm.from_request(request)
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


# --- payments -----------------------------------------------------------------------------------


class PaymentsFilterForm(StudyPeriodFilterForm):
    default_days = 365
    field_order = ["start", "end", "study"]


class PayoutExportForm(forms.Form):
    study = forms.ModelChoiceField(queryset=Study.objects.all(), to_field_name="slug")
    method = forms.ChoiceField(choices=PayoutMethod.choices)


class PayoutResultsForm(forms.Form):
    results = forms.FileField(label="Provider's results (CSV: recipient_id,status,amount)")


@require_GET
@researcher_required
def payments_page(request: HttpRequest) -> HttpResponse:
    form = PaymentsFilterForm.from_query(request.GET.dict())
    if not form.is_valid():
        return render(request, "dashboards/payments.html", {"form": form}, status=400)
    return render(request, "dashboards/payments.html", {"form": form, **payments_context(request, form.cleaned_data)})


def payments_context(request: HttpRequest, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    study = data["study"]
    ready = dashboard.ready_to_export(study)
    return {
        "study": study,
        "statuses": dashboard.PAYMENT_STATUSES,
        "payment_rows": dashboard.payment_rows(study, data["start"], data["end"]),
        "batches": dashboard.batch_rows(study),
        "ready": [(label, ready.get(value, 0)) for value, label in PayoutMethod.choices],
        "methods": PayoutMethod.choices,
        "draws": study.lottery_draws.all()[:20],
        "can_export": request.user.has_perm(f"participants.{EXPORT_PAYOUTS}"),
        "results_form": PayoutResultsForm(),
        **extra,
    }


def _csv_download(text: str, filename: str) -> HttpResponse:
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_POST
@researcher_with_permission(EXPORT_PAYOUTS)
def payout_export(request: HttpRequest) -> HttpResponse:
    """Put the approved entries of one method into a new batch and download its file."""
    form = PayoutExportForm(request.POST)
    if not form.is_valid():
        return HttpResponse("Choose a study and a payout method.", status=400)
    study, method = form.cleaned_data["study"], form.cleaned_data["method"]
    batch = payments.export_payout_batch(study=study, method=method, by=request.user)
    if batch is None:
        django_messages.info(request, "No approved payments are waiting for this payout method.")
        return redirect(f"{reverse('dashboards:payments')}?study={study.slug}")
    return _csv_download(payments.payout_file(batch=batch, by=request.user), f"payout-{batch.pk}-{method}.csv")


@require_GET
@researcher_with_permission(EXPORT_PAYOUTS)
def payout_file(request: HttpRequest, batch_id: int) -> HttpResponse:
    """The same batch's file again (nothing new goes into it)."""
    batch = get_object_or_404(PayoutBatch, pk=batch_id)
    return _csv_download(payments.payout_file(batch=batch, by=request.user), f"payout-{batch.pk}-{batch.method}.csv")


@require_POST
@researcher_with_permission(EXPORT_PAYOUTS)
def payout_results(request: HttpRequest, batch_id: int) -> HttpResponse:
    """Import the provider's results for a batch; every bad line is listed and changes nothing."""
    batch = get_object_or_404(PayoutBatch.objects.select_related("study"), pk=batch_id)
    form = PayoutResultsForm(request.POST, request.FILES)
    report = None
    if form.is_valid():
        try:
            text = form.cleaned_data["results"].read().decode("utf-8")
        except UnicodeDecodeError:
            form.add_error("results", "The file is not UTF-8 text.")
        else:
            report = payments.import_payout_results(batch=batch, text=text, by=request.user)
    filters = PaymentsFilterForm.from_query({"study": batch.study.slug})
    filters.is_valid()
    context = payments_context(request, filters.cleaned_data, results_form=form, report=report, report_batch=batch)
    status = 400 if not form.is_valid() or (report and report.errors) else 200
    return render(request, "dashboards/payments.html", {"form": filters, **context}, status=status)
