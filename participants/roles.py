"""Researcher roles: three Django groups defined in code, the dashboard access rule, and role-change auditing.

The groups are (re)built by ``create_roles()``, which runs after every migrate and from
``manage.py create_roles``. Their permissions are declared here, so a deploy always converges to the
same roles; change a role by editing ``ROLE_PERMISSIONS``, not the admin.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from django.apps import AppConfig, apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, Permission
from django.contrib.auth.views import redirect_to_login
from django.contrib.contenttypes.management import create_contenttypes
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db.models.signals import m2m_changed, post_migrate, post_save, pre_save
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from participants.audit import record_audit
from participants.models import Participant

PI = "PI"
READER = "Researcher (read-only)"
OPS = "Payments/operations"
ROLE_NAMES = (PI, READER, OPS)

# Apps whose models researchers work with; read-only researchers may view all of them.
RESEARCH_APPS = ("participants", "rankers", "surveys")

# Permissions that no model declares: created here, checked by the admin and (later) exports.
VIEW_CONTACT_DATA = "view_contact_data"
EXPORT_DATA = "export_data"
EXPORT_IDENTIFIABLE = "export_identifiable_data"
EXPORT_PAYOUTS = "export_payouts"
CUSTOM_PERMISSIONS = {
    EXPORT_DATA: "Can export study data (de-identified)",
    VIEW_CONTACT_DATA: "Can see participants' contact data",
    EXPORT_IDENTIFIABLE: "Can export identifiable participant data",
    EXPORT_PAYOUTS: "Can export payout files and import payout results",
}

# Rows nobody edits from the UI: written by code only (the database also refuses some changes).
READ_ONLY_MODELS = (
    "assignment",
    "auditevent",
    "vendorevent",
    "stratumcounter",
    "consentrecord",
    "heartbeat",
    "payoutbatch",
)

OPS_PERMISSIONS = (
    "participants.view_participant",
    "participants.change_participant",
    "participants.view_payment",
    "participants.add_payment",
    "participants.change_payment",
    f"participants.{VIEW_CONTACT_DATA}",
    f"participants.{EXPORT_PAYOUTS}",
)


def _permissions(codes: list[str]) -> list[Permission]:
    by_code = {
        f"{p.content_type.app_label}.{p.codename}": p
        for p in Permission.objects.filter(content_type__app_label__in=(*RESEARCH_APPS, "auth")).select_related(
            "content_type"
        )
    }
    return [by_code[code] for code in codes if code in by_code]


def _all_codes(app_labels: tuple[str, ...], prefix: str = "") -> list[str]:
    perms = Permission.objects.filter(content_type__app_label__in=app_labels, codename__startswith=prefix)
    return [
        f"{app_label}.{codename}" for app_label, codename in perms.values_list("content_type__app_label", "codename")
    ]


def _writable(code: str) -> bool:
    action, _, model = code.split(".", 1)[1].partition("_")
    return action not in ("add", "change", "delete") or model not in READ_ONLY_MODELS


def role_permission_codes() -> dict[str, list[str]]:
    views = [code for code in _all_codes(RESEARCH_APPS, prefix="view_") if code.split(".")[1] not in CUSTOM_PERMISSIONS]
    pi = [code for code in _all_codes(RESEARCH_APPS) if _writable(code)]
    pi += ["auth.view_user", "auth.add_user", "auth.change_user", "auth.view_group"]
    return {PI: pi, READER: views, OPS: sorted(set(views) | set(OPS_PERMISSIONS))}


def ensure_permissions() -> None:
    """Make sure every model permission and our custom ones exist, whatever order post_migrate ran in."""
    for app_config in apps.get_app_configs():
        create_contenttypes(app_config, verbosity=0)
        create_permissions(app_config, verbosity=0)
    content_type = ContentType.objects.get_for_model(Participant)
    for codename, name in CUSTOM_PERMISSIONS.items():
        Permission.objects.get_or_create(content_type=content_type, codename=codename, defaults={"name": name})


def create_roles() -> dict[str, Group]:
    """Create or update the three role groups. Safe to run any number of times."""
    ensure_permissions()
    groups = {}
    for name, codes in role_permission_codes().items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(_permissions(codes))
        groups[name] = group
    return groups


def create_roles_after_migrate(sender: AppConfig, **kwargs: Any) -> None:
    if sender.label == "participants":
        create_roles()


post_migrate.connect(create_roles_after_migrate, dispatch_uid="participants.create_roles")


# --- access rule --------------------------------------------------------------------------------


def second_factor_ok(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Signed in with a one-time token (django-otp), or no second factor is required (``PRC_REQUIRE_2FA``)."""
    return not settings.PRC_REQUIRE_2FA or bool(getattr(user, "is_verified", lambda: False)())


def is_researcher(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Active staff in one of the three roles, or a superuser, signed in with a second factor if required."""
    if not (user.is_authenticated and user.is_active and getattr(user, "is_staff", False)):
        return False
    if not second_factor_ok(user):
        return False
    if getattr(user, "is_superuser", False):
        return True
    return Group.objects.filter(user__pk=user.pk, name__in=ROLE_NAMES).exists()


ViewFunc = Callable[..., HttpResponseBase]


def researcher_required(view: ViewFunc) -> ViewFunc:
    """Anonymous visitors go to the login page; signed-in users without a role get 403."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated or not second_factor_ok(request.user):
            return redirect_to_login(request.get_full_path())
        if not is_researcher(request.user):
            raise PermissionDenied("Research dashboards are for researchers in a role.")
        return view(request, *args, **kwargs)

    return wrapped


def researcher_with_permission(codename: str) -> Callable[[ViewFunc], ViewFunc]:
    """``researcher_required`` plus one permission of this app (e.g. ``EXPORT_PAYOUTS``); 403 without it."""

    def decorate(view: ViewFunc) -> ViewFunc:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.user.is_authenticated and not request.user.has_perm(f"participants.{codename}"):
                raise PermissionDenied("Your role does not allow this.")
            return view(request, *args, **kwargs)

        return researcher_required(wrapped)

    return decorate


# --- role-change audit --------------------------------------------------------------------------

# The admin sets who is acting so that the m2m signal, which knows no request, can name them.
_acting_user: ContextVar[AbstractBaseUser | None] = ContextVar("acting_user", default=None)


@contextlib.contextmanager
def acting_as(user: AbstractBaseUser | AnonymousUser) -> Iterator[None]:
    token = _acting_user.set(user if isinstance(user, AbstractBaseUser) else None)
    try:
        yield
    finally:
        _acting_user.reset(token)


def acting_user() -> AbstractBaseUser | None:
    """Who the admin says is acting (``acting_as``), for signal handlers that know no request."""
    return _acting_user.get()


def _audit_role_change(action: str, user: AbstractBaseUser, group_names: list[str]) -> None:
    record_audit(
        action=action,
        obj=user,
        actor=_acting_user.get(),
        detail={"username": user.get_username(), "groups": sorted(group_names)},
    )


def audit_group_membership(
    sender: type, instance: Any, action: str, reverse: bool, pk_set: set[int] | None, **kwargs: Any
) -> None:
    """Write one audit event per user whose groups changed (from either side of the relation)."""
    verb = {"post_add": "role.added", "post_remove": "role.removed", "pre_clear": "role.removed"}.get(action)
    if verb is None:
        return
    user_model = get_user_model()
    if action == "pre_clear":
        pk_set = set(
            instance.user_set.values_list("pk", flat=True) if reverse else instance.groups.values_list("pk", flat=True)
        )
    if not pk_set:
        return
    if reverse:  # instance is a Group, pk_set holds users
        for user in user_model.objects.filter(pk__in=pk_set):
            _audit_role_change(verb, user, [instance.name])
    else:
        names = list(Group.objects.filter(pk__in=pk_set).values_list("name", flat=True))
        _audit_role_change(verb, instance, names)


m2m_changed.connect(
    audit_group_membership, sender=get_user_model().groups.through, dispatch_uid="participants.audit_roles"
)


# --- account-change audit -----------------------------------------------------------------------

# Flags and secrets of an account whose every change is an audit event (the values of flags are recorded,
# the password never: only that it changed).
AUDITED_USER_FIELDS = ("is_superuser", "is_staff", "is_active", "password")


def remember_user_fields(sender: type, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    """pre_save: note the stored flags, so post_save can tell what this save changed."""
    if instance.pk is None:
        instance._audited_before = None
        return
    stored = get_user_model().objects.filter(pk=instance.pk).values(*AUDITED_USER_FIELDS).first()
    instance._audited_before = stored


def audit_user_fields(sender: type, instance: Any, created: bool, **kwargs: Any) -> None:
    """post_save: one audit event per account created, and per change of a flag or the password."""
    actor = _acting_user.get()
    username = instance.get_username()
    if created:
        flags = {field: getattr(instance, field) for field in AUDITED_USER_FIELDS if field != "password"}
        record_audit(action="user.created", obj=instance, actor=actor, detail={"username": username, **flags})
        return
    before = getattr(instance, "_audited_before", None)
    if before is None:
        return
    for field in AUDITED_USER_FIELDS:
        old, new = before[field], getattr(instance, field)
        if old == new:
            continue
        if field == "password":
            record_audit(action="user.password_changed", obj=instance, actor=actor, detail={"username": username})
        else:
            detail = {"username": username, "field": field, "from": old, "to": new}
            record_audit(action="user.flag_changed", obj=instance, actor=actor, detail=detail)
    instance._audited_before = None


def _permission_codes(pks: set[int]) -> list[str]:
    rows = Permission.objects.filter(pk__in=pks).values_list("content_type__app_label", "codename")
    return sorted(f"{app_label}.{codename}" for app_label, codename in rows)


def audit_user_permissions(
    sender: type, instance: Any, action: str, reverse: bool, pk_set: set[int] | None, **kwargs: Any
) -> None:
    """Raw permissions given to or taken from a user (in the admin, only superusers may)."""
    verb = {"post_add": "user.permissions_added", "post_remove": "user.permissions_removed"}.get(action)
    if action == "pre_clear":
        verb = "user.permissions_removed"
        related = instance.user_set if reverse else instance.user_permissions
        pk_set = set(related.values_list("pk", flat=True))
    if verb is None or not pk_set:
        return
    if reverse:  # instance is a Permission, pk_set holds users
        changes = [(user, _permission_codes({instance.pk})) for user in get_user_model().objects.filter(pk__in=pk_set)]
    else:
        changes = [(instance, _permission_codes(pk_set))]
    for user, codes in changes:
        detail = {"username": user.get_username(), "permissions": codes}
        record_audit(action=verb, obj=user, actor=_acting_user.get(), detail=detail)


def connect_account_audit() -> None:
    """Connected from ``ParticipantsConfig.ready``."""
    user_model = get_user_model()
    pre_save.connect(remember_user_fields, sender=user_model, dispatch_uid="participants.remember_user_fields")
    post_save.connect(audit_user_fields, sender=user_model, dispatch_uid="participants.audit_user_fields")
    m2m_changed.connect(
        audit_user_permissions,
        sender=user_model.user_permissions.through,
        dispatch_uid="participants.audit_user_permissions",
    )
