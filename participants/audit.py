"""The audit trail: one function to write it, used by every app."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User

from participants.models import AuditEvent, Participant


def record_audit(
    *,
    action: str,
    obj: Any,
    actor: AbstractBaseUser | AnonymousUser | Participant | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one audit event. ``actor`` is a user, a participant, or None for the system."""
    user = actor if isinstance(actor, User) else None
    if isinstance(actor, Participant):
        label = f"participant {actor.public_id}"
    elif user is not None:
        label = user.get_username()
    else:
        label = "system"
    return AuditEvent.objects.create(
        actor=user,
        actor_label=label,
        action=action,
        object_type=type(obj).__name__ if not isinstance(obj, str) else obj,
        object_id=str(getattr(obj, "public_id", None) or getattr(obj, "pk", "") or ""),
        detail=detail or {},
    )
