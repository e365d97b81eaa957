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
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Model, QuerySet
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse, QueryDict

from participants import payments, roles
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
from participants.services import withdraw_participant

admin.site.site_header = "PRC research platform"
admin.site.site_title = "PRC research platform"
admin.site.index_title = "Study administration"

CONTACT_PERMISSION = f"participants.{roles.VIEW_CONTACT_DATA}"


def can_see_contact_data(request: HttpRequest) -> bool:
    return request.user.has_perm(CONTACT_PERMISSION)


class ReadOnlyMixin:
    """Shown, never added, changed or deleted from the UI, whoever asks."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


# --- studies ------------------------------------------------------------------------------------


class ArmInline(admin.TabularInline):
    model = Arm
    extra = 0
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
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        # The allocation sequence depends on the arms and their weights: fixed once recruitment starts.
        if isinstance(obj, Study) and obj.status != Study.Status.DRAFT:
            return ("slug", "allocation_weight", "is_control")
        return ()

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        started = isinstance(obj, Study) and obj.status != Study.Status.DRAFT
        return not started and super().has_add_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        started = isinstance(obj, Study) and obj.status != Study.Status.DRAFT
        return not started and super().has_delete_permission(request, obj)


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "status", "timezone", "arm_count", "created_at")
    list_filter = ("status",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = (ArmInline,)
    readonly_fields = ("randomization_seed_hash", "created_at")

    @admin.display(description="arms")
    def arm_count(self, study: Study) -> int:
        return study.arms.count()

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        fields = [f for f in super().get_fields(request, obj) if f != "randomization_seed"]
        if self._seed_visible(request, obj):
            fields.insert(fields.index("randomization_seed_hash"), "randomization_seed")
        return fields

    def _seed_visible(self, request: HttpRequest, obj: Model | None) -> bool:
        """Only an editor of a draft study sees (and may set) the seed; afterwards only its hash."""
        draft = obj is None or (isinstance(obj, Study) and obj.status == Study.Status.DRAFT)
        return draft and self.has_change_permission(request, obj)


# --- recruitment --------------------------------------------------------------------------------


@admin.register(RecruitmentSource)
class RecruitmentSourceAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "study", "pid_param", "cost_per_complete", "quota", "active", "signed")
    list_filter = ("study", "active")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}  # vendors' redirect links are https

    @admin.display(boolean=True, description="signed links")
    def signed(self, source: RecruitmentSource) -> bool:
        return bool(source.signing_secret)

    def get_exclude(self, request: HttpRequest, obj: Model | None = None) -> Any:
        # The signing secret is for editors; readers only see whether links are signed.
        return () if self.has_change_permission(request, obj) else ("signing_secret",)


@admin.register(VendorEvent)
class VendorEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
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


@admin.register(ConsentDocument)
class ConsentDocumentAdmin(admin.ModelAdmin):
    list_display = ("study", "version", "title", "effective_at", "on_withdrawal", "records")
    list_filter = ("study", "on_withdrawal")

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
class ConsentRecordAdmin(ReadOnlyMixin, admin.ModelAdmin):
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
class ParticipantAdmin(admin.ModelAdmin):
    list_display = (
        "public_id",
        "study",
        "source",
        "stage",
        "created_at",
        "consented_at",
        "enrolled_at",
        "included_at",
        "withdrawn_at",
    )
    list_filter = (
        "study",
        "stage",
        "source",
        "vendor_outcome",
        ("included_at", admin.EmptyFieldListFilter),
        ("withdrawn_at", admin.EmptyFieldListFilter),
    )
    date_hierarchy = "created_at"
    list_select_related = ("study", "source")
    inlines = (ConsentRecordInline, InstallInline, PaymentInline)
    actions = ("withdraw",)
    # Set by the enrolment and withdrawal workflows, never typed in.
    readonly_fields = (
        "public_id",
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
        return False  # withdrawal keeps or deletes data by the consent's terms, with an audit record


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("participant", "arm", "stratum", "position", "assigned_at")
    list_filter = ("arm__study", "arm", "stratum")
    search_fields = ("participant__public_id",)
    list_select_related = ("participant", "arm__study")


@admin.register(StratumCounter)
class StratumCounterAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("study", "stratum", "next_position")
    list_filter = ("study",)


@admin.register(ExtensionInstall)
class ExtensionInstallAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("participant", "install_key", "extension_version", "installed_at", "last_seen_at", "uninstalled_at")
    list_filter = ("extension_version", ("uninstalled_at", admin.EmptyFieldListFilter))
    search_fields = ("participant__public_id", "install_key")
    exclude = ("token_hash",)
    list_select_related = ("participant",)


@admin.register(Heartbeat)
class HeartbeatAdmin(ReadOnlyMixin, admin.ModelAdmin):
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
class PaymentAdmin(admin.ModelAdmin):
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
