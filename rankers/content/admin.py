"""Admin for the content inventory: sources (with CSV import and export and "fetch now"), runs and posts.

Runs and posts are written by the connectors only; the admin shows them read-only.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone

from rankers.content import source_csv, tasks
from rankers.content.models import CandidatePost, ConnectorRun, ContentSource

MAX_CSV_BYTES = 5 * 1024 * 1024


class SourceImportForm(forms.Form):
    file = forms.FileField(label="CSV file", help_text=f"Columns: {', '.join(source_csv.COLUMNS)}.")
    partial = forms.BooleanField(
        required=False, label="Import the good rows even if some rows are bad (the bad ones are listed and skipped)"
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_CSV_BYTES:
            raise forms.ValidationError(f"The file is larger than {MAX_CSV_BYTES // (1024 * 1024)} MB.")
        return upload


@admin.register(ContentSource)
class ContentSourceAdmin(admin.ModelAdmin):
    form = source_csv.ContentSourceForm
    list_display = ("name", "platform", "kind", "connector", "lean", "reliability", "arms", "active", "posts")
    list_filter = ("platform", "kind", "connector", "lean", "active")
    search_fields = ("name", "location")
    actions = ("fetch_now", "export_csv")
    change_list_template = "admin/rankers/contentsource/change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[ContentSource]:
        return super().get_queryset(request).annotate(post_count=Count("posts"))

    @admin.display(description="Posts", ordering="post_count")
    def posts(self, obj: Any) -> int:
        return int(obj.post_count)

    def get_urls(self) -> list[URLPattern]:
        return [
            path("import-csv/", self.admin_site.admin_view(self.import_view), name="rankers_contentsource_import"),
            path("export-csv/", self.admin_site.admin_view(self.export_view), name="rankers_contentsource_export"),
            *super().get_urls(),
        ]

    @admin.action(description="Fetch the selected sources now", permissions=["change"])
    def fetch_now(self, request: HttpRequest, queryset: QuerySet[ContentSource]) -> None:
        ids = list(queryset.filter(active=True).values_list("pk", flat=True))
        for source_id in ids:
            tasks.fetch_source.delay_on_commit(source_id, trigger="manual")
        messages.success(request, f"Queued {len(ids)} active source(s); their runs appear under Connector runs.")

    @admin.action(description="Export the selected sources as CSV", permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet[ContentSource]) -> HttpResponse:
        return csv_response(queryset.order_by("platform", "name"))

    def export_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return csv_response(ContentSource.objects.order_by("platform", "name"))

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request) or not self.has_change_permission(request):
            raise PermissionDenied
        form = SourceImportForm(request.POST or None, request.FILES or None)
        result = None
        if request.method == "POST" and form.is_valid():
            result = source_csv.import_sources_csv(
                form.cleaned_data["file"].read(), partial=form.cleaned_data["partial"]
            )
            if result.stored:
                messages.success(request, f"Imported {result.created} new and {result.updated} updated source(s).")
            if not result.errors:
                return HttpResponseRedirect(reverse("admin:rankers_contentsource_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Import content sources from CSV",
            "opts": self.model._meta,
            "form": form,
            "result": result,
            "columns": source_csv.COLUMNS,
        }
        return TemplateResponse(
            request, "admin/rankers/contentsource/import.html", context, status=400 if result and result.errors else 200
        )


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(ConnectorRun)
class ConnectorRunAdmin(ReadOnlyAdmin):
    list_display = (
        "source",
        "connector",
        "trigger",
        "status",
        "started_at",
        "items_read",
        "items_new",
        "items_duplicate",
        "items_skipped",
        "error",
    )
    list_filter = ("status", "connector", "trigger")
    search_fields = ("source__name", "error")
    list_select_related = ("source",)
    date_hierarchy = "started_at"


@admin.register(CandidatePost)
class CandidatePostAdmin(ReadOnlyAdmin):
    list_display = ("post_id", "platform", "source", "author", "title", "created_at", "first_seen_at")
    list_filter = ("platform",)
    search_fields = ("post_id", "url", "title", "author")
    list_select_related = ("source",)
    date_hierarchy = "first_seen_at"
    show_full_result_count = False  # the inventory grows to millions: no COUNT(*) per page


def csv_response(sources: QuerySet[ContentSource]) -> HttpResponse:
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = HttpResponse(source_csv.sources_to_csv(sources), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="content-sources-{stamp}.csv"'
    return response
