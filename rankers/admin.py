"""Admin for ranker service keys (issue one, shown once; revoke; never delete) and the paid scorer's usage.

The slate log and content are read in the researcher pages (rankers/dashboard_views.py), not here.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from rankers.models import RankerServiceKey, ScorerUsage


@admin.register(RankerServiceKey)
class RankerServiceKeyAdmin(admin.ModelAdmin):
    list_display = ("prefix", "label", "created_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("label", "prefix")
    fields = ("label", "prefix", "created_at", "revoked_at")
    readonly_fields = ("prefix", "created_at", "revoked_at")
    actions = ("revoke",)

    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        key = obj.save_with_new_key(by=request.user)
        messages.warning(request, f"Copy the new key now; it is not stored and will not be shown again: {key}")

    @admin.action(description="Revoke the selected keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[RankerServiceKey]) -> None:
        revoked = sum(key.revoke(by=request.user) for key in queryset.filter(revoked_at__isnull=True))
        messages.success(request, f"Revoked {revoked} key(s); they stop working on the next request.")

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # revoked keys stay, so the audit trail keeps its subject


@admin.register(ScorerUsage)
class ScorerUsageAdmin(admin.ModelAdmin):
    """What the paid scorer cost, per day: read-only (the llm backend writes it)."""

    list_display = ("day", "backend", "calls", "failed_calls", "prompt_tokens", "completion_tokens", "cost")
    list_filter = ("backend",)
    date_hierarchy = "day"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


# The content inventory's admin lives beside its models; importing it registers it.
import rankers.content.admin  # noqa: E402,F401
