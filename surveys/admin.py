"""Researcher admin for the survey app: waves are configured here; everything participants wrote is read-only."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from surveys.models import Instrument, Invitation, MessageLog, Question, Response, Wave


class ReadOnly:
    """Shown, never added, changed or deleted from the UI."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class QuestionInline(ReadOnly, admin.TabularInline):
    model = Question
    fields = ("position", "page", "key", "kind", "text")
    readonly_fields = fields
    extra = 0


@admin.register(Instrument)
class InstrumentAdmin(ReadOnly, admin.ModelAdmin):
    """Loaded from surveys/library.py by ``manage.py load_instruments``; edit the library, not the rows."""

    list_display = ("slug", "name", "version")
    inlines = [QuestionInline]


@admin.register(Wave)
class WaveAdmin(admin.ModelAdmin):
    list_display = ("name", "study", "kind", "instrument", "mode", "target", "opens_at", "opens_after_days", "active")
    list_filter = ("study", "kind", "mode", "active")
    fieldsets = (
        (None, {"fields": ("study", "slug", "name", "kind", "instrument", "target", "active", "payment_amount")}),
        (
            "Window: fixed dates, or days after signup",
            {"fields": ("opens_at", "closes_at", "opens_after_days", "open_days")},
        ),
        ("Reminders", {"fields": ("max_reminders", "reminder_interval_days")}),
        ("External survey tool", {"fields": ("mode", "external_url", "callback_secret")}),
    )


@admin.register(Invitation)
class InvitationAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("participant", "wave", "status", "opens_at", "closes_at", "reminders_sent", "reminders_cancelled")
    list_filter = ("wave",)
    list_select_related = ("participant", "wave")


@admin.register(Response)
class ResponseAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("participant", "wave", "source", "page", "started_at", "completed_at")
    list_filter = ("wave", "source")
    list_select_related = ("participant", "wave")
    exclude = ("answers",)  # free text may identify: the audited export is the way to read answers


@admin.register(MessageLog)
class MessageLogAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("at", "participant", "wave", "kind", "channel", "status", "subject")
    list_filter = ("kind", "channel", "status")
    list_select_related = ("participant", "wave")
