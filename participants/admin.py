"""The researcher admin for studies, recruitment, participants, payments and the audit log.

Three rules shape it: contact data (email) shows only to users allowed to see it and never on list
pages; rows written by code (assignments, vendor events, the audit log...) are read-only for
everyone, superusers included; and the randomization seed disappears once recruitment starts.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import Model, QuerySet
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from participants import launch, link_builder, payments, roles, study_status, validators, views
from participants.audit import record_audit
from participants.models import (
    Arm,
    Assignment,
    AuditEvent,
    ConsentDocument,
    ConsentRecord,
    ExtensionInstall,
    Heartbeat,
    LotteryDraw,
    PageCopy,
    Participant,
    Payment,
    PayoutBatch,
    RecruitmentSource,
    StratumCounter,
    Study,
    VendorEvent,
)
from participants.paper import PLATFORM_LABELS
from participants.services import withdraw_participant

admin.site.site_header = "PRC research platform"
admin.site.site_title = "PRC research platform"
admin.site.index_title = "Study administration"
admin.site.site_url = "/research/"  # "View site" opens the research dashboards, not the bare domain

CONTACT_PERMISSION = f"participants.{roles.VIEW_CONTACT_DATA}"


# Participant fields that are contact data: hidden, unsearchable and unfilterable without the permission.
CONTACT_FIELDS = frozenset({"email"})


def can_see_contact_data(request: HttpRequest) -> bool:
    return request.user.has_perm(CONTACT_PERMISSION)


class ContactDataGuard:
    """Refuses list filters on contact data, through any relation, for roles that may not see it.

    Django allows any lookup on a model's own fields from the query string (``?email__iexact=…``), which
    would let a reader tie an address to a public id; the admin answers such URLs with 400 instead.
    """

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        if CONTACT_FIELDS & set(lookup.split("__")) and (request is None or not can_see_contact_data(request)):
            return False
        allowed: bool = super().lookup_allowed(lookup, value, request)  # type: ignore[misc]
        return allowed


class ReasonForm(forms.ModelForm):
    """A model form with a "reason for this change", required once the study has left Draft."""

    change_reason = forms.CharField(
        label="Reason for this change",
        required=False,
        max_length=500,
        widget=forms.TextInput(attrs={"size": 80}),
        help_text="Required once the study has left Draft: recorded in the audit log with your name.",
    )

    def study_of_instance(self) -> Study | None:
        raise NotImplementedError

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        study = self.study_of_instance()
        changed = [name for name in self.changed_data if name != "change_reason"]
        if study is not None and study_status.design_locked(study) and changed and not data.get("change_reason"):
            self.add_error("change_reason", f"Say why you change {', '.join(changed)} of a {study.status} study.")
        return data


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, list, dict, type(None))) else str(value)


def audit_changes(
    request: HttpRequest, form: BaseForm, obj: Model, *, action: str, secret: tuple[str, ...] = ()
) -> None:
    """One audit event naming the user, each changed field (before → after) and the reason typed."""
    changes = {
        name: "(changed)" if name in secret else [_jsonable(form.initial.get(name)), _jsonable(form.cleaned_data[name])]
        for name in form.changed_data
        if name != "change_reason"
    }
    if changes:
        detail = {"changes": changes, "reason": form.cleaned_data.get("change_reason", ""), "object": str(obj)}
        record_audit(action=action, obj=obj, actor=request.user, detail=detail)


class ReadOnlyMixin:
    """Shown, never added, changed or deleted from the UI, whoever asks."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


# --- studies ------------------------------------------------------------------------------------


class ArmForm(forms.ModelForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "ranker_key" in self.fields:  # absent once the design is locked (a read-only field then)
            self.fields["ranker_key"] = forms.ChoiceField(
                choices=[("", "---------"), *((key, key) for key in validators.ranker_keys())],
                help_text="The ranker plugin this arm runs.",
            )


class LockedArmsFormSet(forms.BaseInlineFormSet):
    """Once the study has left Draft, a change to an arm (a start date) needs the reason typed above."""

    def clean(self) -> None:
        super().clean()
        study = self.instance
        if not isinstance(study, Study) or not study.pk or not study_status.design_locked(study):
            return
        if any(form.has_changed() for form in self.forms) and not self.data.get("change_reason", "").strip():
            raise ValidationError(
                "Say why you change an arm of a study that has left Draft: fill in “Reason for this change” above."
            )


class ArmInline(admin.TabularInline):
    model = Arm
    form = ArmForm
    formset = LockedArmsFormSet
    extra = 0
    classes = ("arms-table",)
    fields = (
        "name",
        "slug",
        "ranker_key",
        "allocation_weight",
        "is_control",
        "starts_facebook",
        "starts_reddit",
        "starts_twitter",
        "max_inserted_pct",
        "max_deleted_pct",
        "max_inserted",
        "max_deleted",
        "ranker_config",
    )
    # The allocation sequence and the treatment depend on these: fixed once the study leaves Draft.
    LOCKED: tuple[str, ...] = ("slug", "ranker_key", "allocation_weight", "is_control", "ranker_config")
    LOCKED += ("max_inserted", "max_deleted", "max_inserted_pct", "max_deleted_pct")

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        return self.LOCKED if isinstance(obj, Study) and study_status.design_locked(obj) else ()

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        locked = isinstance(obj, Study) and study_status.design_locked(obj)
        return not locked and super().has_add_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        locked = isinstance(obj, Study) and study_status.design_locked(obj)
        return not locked and super().has_delete_permission(request, obj)


class StudyForm(ReasonForm):
    class Meta:
        model = Study
        # Every field but status, which changes only on the launch checklist page, through the status service.
        fields = [
            f.name for f in Study._meta.get_fields() if f.concrete and f.editable and f.name not in ("id", "status")
        ]

    def study_of_instance(self) -> Study | None:
        return self.instance if self.instance.pk else None


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    form = StudyForm
    list_display = ("name", "slug", "status", "timezone", "arm_count", "checklist_link", "created_at")
    list_filter = ("status",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = (ArmInline,)
    readonly_fields = ("status_and_checklist", "arm_schedule", "randomization_seed_hash", "created_at")
    # Fixed once the study leaves Draft: the strata are part of the allocation sequence, and the inclusion rule
    # (installed so many days, and the baseline survey done) defines the analysed sample for everyone alike.
    LOCKED = ("strata_fields", "inclusion_days", "inclusion_needs_baseline")

    @admin.display(description="arms")
    def arm_count(self, study: Study) -> int:
        return study.arms.count()

    @admin.display(description="launch")
    def checklist_link(self, study: Study) -> str:
        return format_html('<a href="{}">Checklist and status</a>', _checklist_url(study))

    @admin.display(description="status")
    def status_and_checklist(self, study: Study) -> str:
        if not study.pk:
            return "Draft (new studies start as drafts)"
        return format_html(
            '<strong>{}</strong> · <a href="{}">Launch checklist, status changes and previews</a>',
            study.get_status_display(),
            _checklist_url(study),
        )

    @admin.display(description="when each arm intervenes")
    def arm_schedule(self, study: Study) -> str:
        if not study.pk:
            return "-"
        return format_html_join(
            "",
            "<div><strong>{}</strong>: {}</div>",
            ((arm.name, "; ".join(arm_platform_starts(arm))) for arm in study.arms.order_by("id")),
        )

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        fields = [f for f in super().get_fields(request, obj) if f not in ("randomization_seed", "change_reason")]
        fields.remove("status_and_checklist")
        fields.insert(fields.index("slug") + 1, "status_and_checklist")
        if self._seed_visible(request, obj):
            fields.insert(fields.index("randomization_seed_hash"), "randomization_seed")
        if obj is not None:
            fields.append("change_reason")
        return fields

    def _seed_visible(self, request: HttpRequest, obj: Model | None) -> bool:
        """Only an editor of a draft study sees (and may set) the seed; afterwards only its hash."""
        draft = obj is None or (isinstance(obj, Study) and obj.status == Study.Status.DRAFT)
        return draft and self.has_change_permission(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        if isinstance(obj, Study) and study_status.design_locked(obj):
            return (*self.readonly_fields, *self.LOCKED)
        return self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Study, form: BaseForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and study_status.design_locked(obj):
            audit_changes(request, form, obj, action="study.changed", secret=("randomization_seed",))

    def save_formset(self, request: HttpRequest, form: BaseForm, formset: Any, change: bool) -> None:
        study = getattr(form, "instance", None)
        if change and isinstance(study, Study) and study_status.design_locked(study):
            reason = form.cleaned_data.get("change_reason", "")
            for arm_form in formset.forms:
                if arm_form.has_changed() and arm_form.instance.pk:
                    arm_form.cleaned_data["change_reason"] = reason
                    audit_changes(request, arm_form, arm_form.instance, action="arm.changed")
        super().save_formset(request, form, formset, change)

    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        with roles.acting_as(request.user):  # names the PI in the pre-registration's deviation log
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.checklist_view)
        return [path("<int:study_id>/checklist/", view, name="participants_study_checklist"), *super().get_urls()]

    def checklist_view(self, request: HttpRequest, study_id: int) -> HttpResponse:
        """The launch checklist, the status changes the study allows, and links to preview its pages."""
        study = get_object_or_404(Study, pk=study_id)
        if not self.has_view_permission(request, study):
            raise PermissionDenied
        can_change = self.has_change_permission(request, study)
        if request.method == "POST":
            if not can_change:
                raise PermissionDenied
            try:
                study_status.change_study_status(
                    study=study, to=request.POST.get("to", ""), by=request.user, reason=request.POST.get("reason", "")
                )
            except study_status.StudyStatusError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                self.message_user(request, f"{study.name} is now {study.get_status_display().lower()}.")
            return HttpResponseRedirect(request.path)
        checks = launch.launch_checklist(study)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Launch checklist · {study.name}",
            "study": study,
            "opts": self.model._meta,
            "checks": checks,
            "all_pass": all(check.ok for check in checks),
            "passed": sum(check.ok for check in checks),
            "transitions": [
                {
                    "to": to,
                    "verb": study_status.VERBS[Study.Status(to)],
                    "refusal": study_status.transition_refusal(study, to),
                    "needs_reason": study_status.needs_reason(study.status, to),
                }
                for to in study_status.allowed_transitions(study)
            ]
            if can_change
            else [],
            "arms": [(arm, arm_platform_starts(arm)) for arm in study.arms.order_by("id")],
            "sources": study.sources.order_by("id"),
            "preview_pages": views.PREVIEW_PAGES,
            "randomized": study_status.anyone_randomized(study),
        }
        return TemplateResponse(request, "admin/participants/study/checklist.html", context)


def _checklist_url(study: Study) -> str:
    return reverse("admin:participants_study_checklist", args=[study.pk])


NEVER_INTERVENES = "never intervenes on this platform"


def arm_platform_starts(arm: Arm) -> list[str]:
    """Per platform, when the arm starts to intervene; a blank date means it never does there."""
    return [
        f"{label}: {start:%Y-%m-%d}" if (start := arm.start_date(platform)) else f"{label}: {NEVER_INTERVENES}"
        for platform, label in PLATFORM_LABELS.items()
    ]


# --- recruitment --------------------------------------------------------------------------------


class SourceForm(ReasonForm):
    class Meta:
        model = RecruitmentSource
        fields = [f.name for f in RecruitmentSource._meta.get_fields() if f.concrete and f.editable and f.name != "id"]

    def study_of_instance(self) -> Study | None:
        return self.instance.study if self.instance.pk else None


@admin.register(RecruitmentSource)
class RecruitmentSourceAdmin(admin.ModelAdmin):
    form = SourceForm
    list_display = ("name", "slug", "study", "vendor", "pid_param", "cost_per_complete", "quota", "active", "signed")
    list_filter = ("study", "active")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}  # vendors' redirect links are https
    change_form_template = "admin/participants/recruitmentsource/change_form.html"

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        source = RecruitmentSource.objects.select_related("study").filter(pk=object_id).first()
        context = dict(extra_context or {})
        if source is not None:
            base_url = f"{request.scheme}://{request.get_host()}"
            context["links"] = link_builder.source_links(source, base_url)
            context["source"] = source
        return super().change_view(request, object_id, form_url, context)

    def save_model(self, request: HttpRequest, obj: RecruitmentSource, form: BaseForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change or not study_status.design_locked(obj.study):
            return
        if "active" in form.changed_data:
            action = "source.resumed" if obj.active else "source.paused"
            detail = {"source": obj.slug, "reason": form.cleaned_data.get("change_reason", "")}
            record_audit(action=action, obj=obj, actor=request.user, detail=detail)
        audit_changes(request, form, obj, action="source.changed", secret=("signing_secret",))

    @admin.display(boolean=True, description="signed links")
    def signed(self, source: RecruitmentSource) -> bool:
        return bool(source.signing_secret)

    def get_exclude(self, request: HttpRequest, obj: Model | None = None) -> Any:
        # The signing secret is for editors; readers only see whether links are signed.
        return () if self.has_change_permission(request, obj) else ("signing_secret",)


@admin.register(VendorEvent)
class VendorEventAdmin(ReadOnlyMixin, ContactDataGuard, admin.ModelAdmin):
    list_display = ("at", "source_slug", "kind", "outcome", "participant", "note")
    list_filter = ("kind", "outcome", "source")
    search_fields = ("source_slug", "participant__public_id", "note")
    date_hierarchy = "at"
    list_select_related = ("participant",)


@admin.register(PageCopy)
class PageCopyAdmin(admin.ModelAdmin):
    list_display = ("key", "title", "study")
    list_filter = ("study",)
    search_fields = ("key", "title", "body")


# --- consent ------------------------------------------------------------------------------------


class ConsentDocumentForm(ReasonForm):
    class Meta:
        model = ConsentDocument
        fields = [f.name for f in ConsentDocument._meta.get_fields() if f.concrete and f.editable and f.name != "id"]

    def study_of_instance(self) -> Study | None:
        study: Study | None = self.cleaned_data.get("study") if not self.instance.pk else self.instance.study
        return study


@admin.register(ConsentDocument)
class ConsentDocumentAdmin(admin.ModelAdmin):
    form = ConsentDocumentForm
    list_display = ("study", "version", "title", "effective_at", "on_withdrawal", "records")
    list_filter = ("study", "on_withdrawal")

    def save_model(self, request: HttpRequest, obj: ConsentDocument, form: BaseForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not study_status.design_locked(obj.study):
            return
        if change:
            audit_changes(request, form, obj, action="consent.changed")
        else:
            detail = {
                "version": obj.version,
                "effective_at": obj.effective_at.isoformat(),
                "reason": form.cleaned_data.get("change_reason", ""),
            }
            record_audit(action="consent.version_published", obj=obj, actor=request.user, detail=detail)

    @admin.display(description="consents given")
    def records(self, document: ConsentDocument) -> int:
        return document.records.count()

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        # Once someone agreed to a version, its terms are what they agreed to: publish a new version instead.
        if isinstance(obj, ConsentDocument) and obj.records.exists():
            return ("study", "version", "title", "text", "questions", "on_withdrawal")
        return ()


class ConsentRecordInline(ReadOnlyMixin, admin.TabularInline):
    model = ConsentRecord
    fields = ("document", "given_at", "answers", "user_agent")
    readonly_fields = fields


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyMixin, ContactDataGuard, admin.ModelAdmin):
    list_display = ("participant", "document", "given_at")
    list_filter = ("document",)
    search_fields = ("participant__public_id",)
    list_select_related = ("participant", "document__study")


# --- participants -------------------------------------------------------------------------------


class InstallInline(ReadOnlyMixin, admin.TabularInline):
    model = ExtensionInstall
    fields = ("install_key", "extension_version", "installed_at", "last_seen_at", "uninstalled_at")
    readonly_fields = fields


class PaymentInline(ReadOnlyMixin, admin.TabularInline):
    model = Payment
    fields = ("amount", "currency", "kind", "reason", "status", "created_at", "paid_at")
    readonly_fields = fields


@admin.register(Participant)
class ParticipantAdmin(ContactDataGuard, admin.ModelAdmin):
    list_display = (
        "public_id",
        "study",
        "source",
        "is_test",
        "stage",
        "created_at",
        "consented_at",
        "enrolled_at",
        "included_at",
        "withdrawn_at",
    )
    list_filter = (
        "study",
        "is_test",
        "stage",
        "source",
        "vendor_outcome",
        ("included_at", admin.EmptyFieldListFilter),
        ("withdrawn_at", admin.EmptyFieldListFilter),
    )
    date_hierarchy = "created_at"
    list_select_related = ("study", "source")
    inlines = (ConsentRecordInline, InstallInline, PaymentInline)
    actions = ("withdraw", "delete_test_participants")
    # Set by the enrolment and withdrawal workflows, never typed in.
    readonly_fields = (
        "public_id",
        "is_test",
        "study",
        "source",
        "vendor_pid",
        "arm",
        "stage",
        "vendor_outcome",
        "vendor_outcome_at",
        "screener_answers",
        "strata",
        "created_at",
        "screened_in_at",
        "consented_at",
        "enrolled_at",
        "included_at",
        "withdrawn_at",
        "withdrawal_reason",
        "erased_at",
        "enrolment_code_expires_at",
        "enrolment_code_used_at",
    )
    search_fields = ("public_id", "vendor_pid")  # email is added for users who may see contact data
    SECRET_FIELDS = ("status_key_hash", "enrolment_code_hash")

    @admin.display(description="arm")
    def arm(self, participant: Participant) -> str:
        assignment = Assignment.objects.filter(participant=participant).select_related("arm").first()
        return assignment.arm.name if assignment else "-"

    def get_search_fields(self, request: HttpRequest) -> Any:
        fields = self.search_fields
        return (*fields, "email") if can_see_contact_data(request) else fields

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        hidden = set(self.SECRET_FIELDS) | (set() if can_see_contact_data(request) else {"email"})
        return [f for f in super().get_fields(request, obj) if f not in hidden]

    @admin.action(description="Withdraw selected participants", permissions=["change"])
    def withdraw(self, request: HttpRequest, queryset: QuerySet[Participant]) -> None:
        withdrawn = sum(
            withdraw_participant(participant=p, by=request.user, reason="withdrawn by a researcher") for p in queryset
        )
        self.message_user(request, f"{withdrawn} participant(s) withdrawn.")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # people arrive through a vendor link, never by hand

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        # Real participants withdraw (keeping or deleting data by the consent's terms); test ones can be deleted.
        is_test = isinstance(obj, Participant) and obj.is_test
        return is_test and super().has_delete_permission(request, obj)

    def delete_model(self, request: HttpRequest, obj: Participant) -> None:
        _delete_test_participant(request, obj)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        # A test participant's assignment, consent records and installs are read-only rows, but they are the
        # test's own: deleting the participant takes them along without asking for rights to edit them.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        if all(isinstance(obj, Participant) and obj.is_test for obj in objs):
            perms_needed = set()
        return deleted, counts, perms_needed, protected

    @admin.action(description="Delete selected test participants", permissions=["change"])
    def delete_test_participants(self, request: HttpRequest, queryset: QuerySet[Participant]) -> None:
        if not request.user.has_perm("participants.delete_participant"):
            raise PermissionDenied
        tests = list(queryset.filter(is_test=True))
        for participant in tests:
            _delete_test_participant(request, participant)
        skipped = queryset.count() - len(tests) if tests else queryset.count()
        note = f" {skipped} real participant(s) left alone: withdraw them instead." if skipped else ""
        self.message_user(request, f"{len(tests)} test participant(s) deleted.{note}")


def _delete_test_participant(request: HttpRequest, participant: Participant) -> None:
    if not participant.is_test:
        raise PermissionDenied("Only test participants can be deleted; withdraw real participants.")
    record_audit(
        action="participant.test_deleted",
        obj=participant,
        actor=request.user,
        detail={"vendor_pid": participant.vendor_pid, "source": participant.source.slug if participant.source else ""},
    )
    participant.delete()  # a test participant with ledger entries is protected: the ledger is never deleted


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyMixin, ContactDataGuard, admin.ModelAdmin):
    list_display = ("participant", "arm", "stratum", "position", "assigned_at")
    list_filter = ("arm__study", "arm", "stratum")
    search_fields = ("participant__public_id",)
    list_select_related = ("participant", "arm__study")


@admin.register(StratumCounter)
class StratumCounterAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("study", "stratum", "next_position")
    list_filter = ("study",)


@admin.register(ExtensionInstall)
class ExtensionInstallAdmin(ReadOnlyMixin, ContactDataGuard, admin.ModelAdmin):
    list_display = ("participant", "install_key", "extension_version", "installed_at", "last_seen_at", "uninstalled_at")
    list_filter = ("extension_version", ("uninstalled_at", admin.EmptyFieldListFilter))
    search_fields = ("participant__public_id", "install_key")
    exclude = ("token_hash",)
    list_select_related = ("participant",)


@admin.register(Heartbeat)
class HeartbeatAdmin(ReadOnlyMixin, ContactDataGuard, admin.ModelAdmin):
    list_display = ("install", "at", "platform", "active_seconds")
    list_filter = ("platform",)
    search_fields = ("install__participant__public_id",)
    list_select_related = ("install__participant",)
    show_full_result_count = False


# --- payments -----------------------------------------------------------------------------------


class AdjustmentForm(forms.ModelForm):
    """A manual credit: who, how much, why. The hidden key makes a double submit credit once."""

    class Meta:
        model = Payment
        fields = ("participant", "amount", "reason", "idempotency_key")
        widgets = {"idempotency_key": forms.HiddenInput}
        labels = {"reason": "Reason (shown to the participant)"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["idempotency_key"].initial = payments.new_idempotency_key("adjustment")
        self.fields["reason"].required = True

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        participant, amount = data.get("participant"), data.get("amount")
        if amount is not None and amount <= 0:
            self.add_error("amount", "The amount must be more than zero.")
        elif participant is not None and amount is not None:
            room = payments.room_under_cap(participant)
            if room is not None and amount > room:
                self.add_error("amount", f"This would pass the participant's cap: at most {room} more can be credited.")
        return data

    def validate_unique(self) -> None:
        pass  # a repeated key is a double submit: the service returns the first entry


@admin.register(Payment)
class PaymentAdmin(ContactDataGuard, admin.ModelAdmin):
    """Entries are credited and moved only through ``participants.payments``; the admin never edits a row."""

    list_display = (
        "reference",
        "participant",
        "amount",
        "currency",
        "kind",
        "reason",
        "method",
        "status",
        "batch",
        "created_at",
        "paid_at",
    )
    list_filter = ("status", "kind", "method", "participant__study")
    search_fields = ("participant__public_id", "idempotency_key", "reason", "provider_reference")
    date_hierarchy = "created_at"
    list_select_related = ("participant", "batch")
    autocomplete_fields = ("participant",)
    actions = ("approve", "mark_paid", "mark_failed", "cancel")
    add_form = AdjustmentForm

    def get_form(self, request: HttpRequest, obj: Model | None = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        if obj is None:
            return AdjustmentForm.Meta.fields
        return super().get_fields(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        # A ledger row is never edited: its status moves through the actions, each one audited.
        if obj is not None:
            return [f.name for f in Payment._meta.fields]
        return ()

    def save_model(self, request: HttpRequest, obj: Payment, form: BaseForm, change: bool) -> None:
        data = form.cleaned_data
        credit = payments.adjust_payment(
            participant=data["participant"],
            amount=data["amount"],
            reason=data["reason"],
            idempotency_key=data["idempotency_key"],
            by=request.user,
        )
        assert isinstance(form, forms.ModelForm)
        form.instance = credit.payment

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # cancel instead

    def _move(self, request: HttpRequest, queryset: QuerySet[Payment], to: str, note: str = "") -> None:
        moved = payments.move_payments(
            payment_ids=queryset.values_list("pk", flat=True), to=to, by=request.user, note=note
        )
        skipped = queryset.count() - len(moved)
        message = f"{len(moved)} payment(s) now {to}."
        if skipped:
            message += f" {skipped} skipped: their status cannot become {to}."
        self.message_user(request, message, level=messages.WARNING if skipped else messages.SUCCESS)

    @admin.action(description="Approve selected owed (or failed) payments", permissions=["change"])
    def approve(self, request: HttpRequest, queryset: QuerySet[Payment]) -> None:
        self._move(request, queryset, Payment.Status.APPROVED)

    @admin.action(description="Mark selected approved payments as paid", permissions=["change"])
    def mark_paid(self, request: HttpRequest, queryset: QuerySet[Payment]) -> None:
        self._move(request, queryset, Payment.Status.PAID, note="marked paid in the admin")

    @admin.action(description="Mark selected approved payments as failed", permissions=["change"])
    def mark_failed(self, request: HttpRequest, queryset: QuerySet[Payment]) -> None:
        self._move(request, queryset, Payment.Status.FAILED, note="marked failed in the admin")

    @admin.action(description="Cancel selected unpaid payments", permissions=["change"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[Payment]) -> None:
        self._move(request, queryset, Payment.Status.CANCELLED, note="cancelled in the admin")


@admin.register(PayoutBatch)
class PayoutBatchAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("pk", "study", "method", "created_at", "created_by", "entries")
    list_filter = ("study", "method")

    @admin.display(description="entries")
    def entries(self, batch: PayoutBatch) -> int:
        return batch.payments.count()


class LotteryDrawForm(forms.ModelForm):
    class Meta:
        model = LotteryDraw
        fields = ("study", "name", "prize", "winners_count", "seed", "enrolled_before")
        help_texts = {"seed": "Leave empty for a random seed; it is recorded either way."}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "seed" in self.fields:  # absent on a recorded draw, where every field is read-only
            self.fields["seed"].required = False


@admin.register(LotteryDraw)
class LotteryDrawAdmin(admin.ModelAdmin):
    """Adding a draw runs it (``payments.run_lottery``); a recorded draw never changes."""

    list_display = ("name", "study", "prize", "winners_count", "eligible_count", "drawn_at", "drawn_by")
    list_filter = ("study",)
    form = LotteryDrawForm

    @admin.display(description="eligible")
    def eligible_count(self, draw: LotteryDraw) -> int:
        return len(draw.eligible)

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        return [f.name for f in LotteryDraw._meta.fields] if obj is not None else ()

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        if obj is None:
            return LotteryDrawForm.Meta.fields
        return super().get_fields(request, obj)

    def save_model(self, request: HttpRequest, obj: LotteryDraw, form: BaseForm, change: bool) -> None:
        data = form.cleaned_data
        draw = payments.run_lottery(
            study=data["study"],
            name=data["name"],
            prize=data["prize"],
            winners_count=data["winners_count"],
            seed=data.get("seed") or "",
            enrolled_before=data.get("enrolled_before"),
            by=request.user,
        )
        assert isinstance(form, forms.ModelForm)
        form.instance = draw

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False if obj is not None else super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


# --- audit log and users ------------------------------------------------------------------------


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("at", "actor_label", "action", "object_type", "object_id")
    list_filter = ("action", "object_type")
    search_fields = ("actor_label", "action", "object_id")
    date_hierarchy = "at"
    fields = ("at", "actor", "actor_label", "action", "object_type", "object_id", "detail")
    readonly_fields = fields


User = get_user_model()
admin.site.unregister(User)

# What only a superuser may set: these are how a researcher would make themself more than their role.
ESCALATING_FIELDS = ("is_superuser", "is_staff", "user_permissions")


@admin.register(User)
class AuditedUserAdmin(UserAdmin):
    """The user admin, closed to privilege escalation.

    Superusers edit everything. Anyone else allowed here (a PI) manages people only through the three
    roles: the superuser, staff and raw-permission fields are neither shown nor accepted, the only groups
    offered are the roles, a user's staff flag follows whether they hold a role, and superusers' accounts
    (password included) are read-only to them. A refused attempt is answered 403 and audited; every change
    of a flag, role, permission or password is audited by ``participants.roles`` with the acting user.
    """

    def get_fieldsets(self, request: HttpRequest, obj: Model | None = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return fieldsets
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f not in ESCALATING_FIELDS]})
            for name, options in fieldsets
        ]

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "groups" and not request.user.is_superuser:
            kwargs["queryset"] = Group.objects.filter(name__in=roles.ROLE_NAMES)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        if getattr(obj, "is_superuser", False) and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        with roles.acting_as(request.user):
            if request.method == "POST":
                self._refuse_escalation(request, object_id, posted=request.POST)
            return super().changeform_view(request, object_id, form_url, extra_context)

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        with roles.acting_as(request.user):
            if request.method == "POST":
                self._refuse_escalation(request, id, posted=None)
            return super().user_change_password(request, id, form_url)

    def save_related(self, request: HttpRequest, form: BaseForm, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        user = cast(Any, form).instance
        if not request.user.is_superuser and not user.is_superuser:
            # Roles are the only way a non-superuser grants access: the staff flag follows them.
            holds_role = user.groups.filter(name__in=roles.ROLE_NAMES).exists()
            if user.is_staff != holds_role:
                user.is_staff = holds_role
                user.save(update_fields=["is_staff"])

    def _refuse_escalation(self, request: HttpRequest, object_id: str | None, posted: QueryDict | None) -> None:
        """403, with an audit event, for a non-superuser's change to a superuser or to what only superusers set."""
        if request.user.is_superuser:
            return
        target = User.objects.filter(pk=object_id).first() if object_id and object_id.isdigit() else None
        problems = []
        if target is not None and target.is_superuser:
            problems.append("target is a superuser")
        if posted is not None:
            problems += [f"sets {field}" for field in ESCALATING_FIELDS if field in posted]
            role_ids = {str(pk) for pk in Group.objects.filter(name__in=roles.ROLE_NAMES).values_list("pk", flat=True)}
            if set(posted.getlist("groups")) - role_ids:
                problems.append("adds a group that is not a role")
        if not problems:
            return
        username = target.get_username() if target is not None else str(posted.get("username", "")) if posted else ""
        record_audit(
            action="user.change_refused",
            obj=target if target is not None else "User",
            actor=request.user,
            detail={"username": username, "problems": problems, "path": request.path},
        )
        raise PermissionDenied("Only a superuser may do this.")
