"""Research pages for behaviour data and exports: parse the filter, check access, make one call, render."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from participants import events, exports
from participants.forms import LAST_STUDY_SESSION_KEY, StudyPeriodFilterForm
from participants.models import Export, Study
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


# --- exports -------------------------------------------------------------------------------------


class ExportForm(forms.Form):
    study = forms.ModelChoiceField(queryset=Study.objects.order_by("-created_at"), to_field_name="slug")
    datasets = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, label="Tables")
    format = forms.ChoiceField(choices=Export.Format.choices, initial=Export.Format.PARQUET)
    identifiable = forms.BooleanField(
        required=False, label="Identifiable (vendor ids, screener answers and free text; needs that right)"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [(table.name, table.title) for table in exports.datasets()]
        field = self.fields["datasets"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = choices
        self.fields["datasets"].initial = [name for name, _ in choices]


def _exports_page(request: HttpRequest, form: ExportForm, status: int = 200) -> HttpResponse:
    context = {
        "form": form,
        "can_export": exports.may_export(request.user),
        "recent": Export.objects.select_related("study", "requested_by")[:20],
    }
    return render(request, "dashboards/exports.html", context, status=status)


@require_http_methods(["GET", "POST"])
@researcher_required
def exports_page(request: HttpRequest) -> HttpResponse:
    """The export form, and the recent exports; a POST queues one and shows its progress."""
    if request.method == "GET":
        return _exports_page(request, ExportForm(initial={"study": request.session.get(LAST_STUDY_SESSION_KEY)}))
    form = ExportForm(request.POST)
    if not form.is_valid():
        return _exports_page(request, form, status=400)
    data = form.cleaned_data
    try:
        export = exports.request_export(
            study=data["study"],
            by=request.user,
            names=data["datasets"],
            fmt=data["format"],
            identifiable=data["identifiable"],
        )
    except exports.ExportRefused as exc:
        raise PermissionDenied("Your role does not allow this export.") from exc
    return redirect("dashboards:export", export_id=export.pk)


@require_GET
@researcher_required
def export_detail(request: HttpRequest, export_id: int) -> HttpResponse:
    export = get_object_or_404(Export.objects.select_related("study"), pk=export_id)
    return render(request, "dashboards/export.html", {"export": export, "progress": _progress(export)})


def _progress(export: Export) -> dict[str, Any]:
    return {
        "status": export.status,
        "dataset": export.dataset,
        "datasets_done": export.datasets_done,
        "datasets": len(export.datasets),
        "rows_done": export.rows_done,
        "size_bytes": export.size_bytes,
        "error": export.error,
        "download": reverse("dashboards:export-download", args=[export.pk]) if export.status == "done" else None,
    }


@require_GET
@researcher_required
def export_status(request: HttpRequest, export_id: int) -> JsonResponse:
    """What the progress page polls."""
    return JsonResponse(_progress(get_object_or_404(Export, pk=export_id)))


@require_GET
@researcher_required
def export_download(request: HttpRequest, export_id: int) -> FileResponse:
    export = get_object_or_404(Export.objects.select_related("study"), pk=export_id, status=Export.Status.DONE)
    if not exports.may_export(request.user, identifiable=export.identifiable):
        exports.record_download(export, request.user, refused=True)
        raise PermissionDenied("Your role does not allow this export.")
    exports.record_download(export, request.user)
    return FileResponse(exports.export_path(export).open("rb"), as_attachment=True, filename=export.file_name)
