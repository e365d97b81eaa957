"""The pre-registration lock, its deviation log, and blinding of per-arm effect estimates.

1. A PI freezes the plan (``freeze_plan``): the analysis plan text, the primary outcomes, the arms with
   their weights, and the randomization seed's hash, as one canonical JSON document whose SHA-256 the
   platform shows. It is frozen once; freezing after launch is allowed but recorded as such.
2. Every later change to one of those settings is a deviation: ``record_deviations`` compares the study
   as it stands with the plan's ``current`` document and writes one ``PlanDeviation`` row (and an audit
   event) per difference. Saving an arm or the study calls it (``ParticipantsConfig.ready``); amending
   the text or the outcomes goes through ``amend_plan``, which needs a reason.
3. Effect estimates are blinded (pooled only, arm labels hidden) until a PI unblinds the study
   (``unblind``, audited, once).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, PermissionsMixin, User
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from participants.audit import record_audit
from participants.models import AnalysisPlan, Arm, PlanDeviation, Study, Unblinding
from participants.roles import acting_user

Document = dict[str, Any]
PI_PERMISSION = "participants.change_study"  # the permission that makes a PI (see ``study_status``)


class PreregError(Exception):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message, self.field = message, field


def design(study: Study) -> Document:
    """The randomization design the pre-registration fixes: arms and weights, and the seed's hash."""
    arms = {
        arm.slug: {
            "name": arm.name,
            "ranker_key": arm.ranker_key,
            "weight": arm.allocation_weight,
            "is_control": arm.is_control,
        }
        for arm in study.arms.order_by("slug")
    }
    return {"arms": arms, "randomization_seed_hash": study.randomization_seed_hash}


def document(text: str, primary_outcomes: Sequence[str], study_design: Mapping[str, Any]) -> Document:
    return {"analysis_plan": text, "primary_outcomes": list(primary_outcomes), **study_design}


def document_hash(doc: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON (sorted keys, no spaces): the same document always has the same hash."""
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def differences(before: Mapping[str, Any], after: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any, Any]]:
    """Every leaf that differs, as (dotted path, before, after); an added or removed key has None on one side."""
    changes = []
    for key in sorted(set(before) | set(after), key=str):
        path = f"{prefix}{key}"
        old, new = before.get(key), after.get(key)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            changes += differences(old, new, prefix=f"{path}.")
        elif old != new:
            changes.append((path, old, new))
    return changes


def _require_pi(user: AbstractBaseUser | AnonymousUser | None) -> None:
    if not (isinstance(user, PermissionsMixin) and user.has_perm(PI_PERMISSION)):
        raise PreregError("Only a PI may do this.")


def _clean_outcomes(outcomes: Sequence[str]) -> list[str]:
    cleaned = list(dict.fromkeys(o.strip() for o in outcomes if o.strip()))
    if not cleaned:
        raise PreregError("Name at least one primary outcome.", field="primary_outcomes")
    return cleaned


def freeze_plan(
    *, study: Study, text: str, primary_outcomes: Sequence[str], by: AbstractBaseUser | AnonymousUser | None
) -> AnalysisPlan:
    """Freeze the study's pre-registration (once), or raise ``PreregError`` saying why not."""
    _require_pi(by)
    if not text.strip():
        raise PreregError("Write the analysis plan before freezing it.", field="text")
    outcomes = _clean_outcomes(primary_outcomes)
    with transaction.atomic():
        locked = Study.objects.select_for_update().get(pk=study.pk)
        if AnalysisPlan.objects.filter(study=locked).exists():
            raise PreregError("The plan is already frozen: change it by amending, with a reason.")
        doc = document(text.strip(), outcomes, design(locked))
        plan = AnalysisPlan.objects.create(
            study=locked,
            frozen=doc,
            frozen_hash=document_hash(doc),
            current=doc,
            study_status_at_freeze=locked.status,
            frozen_by=by if isinstance(by, User) else None,
        )
        record_audit(
            action="prereg.frozen",
            obj=locked,
            actor=by,
            detail={"hash": plan.frozen_hash, "status": locked.status, "primary_outcomes": outcomes},
        )
    return plan


def record_deviations(
    *,
    study: Study,
    by: AbstractBaseUser | AnonymousUser | None,
    reason: str = "",
    plan_changes: Mapping[str, Any] | None = None,
) -> list[PlanDeviation]:
    """Log every difference between the plan's ``current`` document and the study now (plus ``plan_changes``
    to the text or outcomes); a study without a frozen plan has nothing to deviate from."""
    with transaction.atomic():
        plan = AnalysisPlan.objects.select_for_update().filter(study_id=study.pk).first()
        if plan is None:
            return []
        now = {**plan.current, **(plan_changes or {}), **design(Study.objects.get(pk=study.pk))}
        changes = differences(plan.current, now)
        if not changes:
            return []
        user = by if isinstance(by, User) else None
        label = user.get_username() if user is not None else "system"
        rows = [
            PlanDeviation.objects.create(
                plan=plan, actor=user, actor_label=label, setting=path, before=old, after=new, reason=reason
            )
            for path, old, new in changes
        ]
        plan.current = now
        plan.save(update_fields=["current"])
        record_audit(
            action="prereg.deviation",
            obj=study,
            actor=by,
            detail={"settings": [path for path, *_ in changes], "reason": reason, "hash": document_hash(now)},
        )
    return rows


def amend_plan(
    *,
    study: Study,
    by: AbstractBaseUser | AnonymousUser | None,
    reason: str,
    text: str | None = None,
    primary_outcomes: Sequence[str] | None = None,
) -> list[PlanDeviation]:
    """Change the plan text or primary outcomes after the freeze: a PI, with a reason, logged as deviations."""
    _require_pi(by)
    if not reason.strip():
        raise PreregError("Say why the plan changes: every deviation is logged with its reason.", field="reason")
    changes: dict[str, Any] = {}
    if text is not None:
        if not text.strip():
            raise PreregError("The analysis plan cannot be empty.", field="text")
        changes["analysis_plan"] = text.strip()
    if primary_outcomes is not None:
        changes["primary_outcomes"] = _clean_outcomes(primary_outcomes)
    if not AnalysisPlan.objects.filter(study_id=study.pk).exists():
        raise PreregError("Freeze the plan first.")
    return record_deviations(study=study, by=by, reason=reason.strip(), plan_changes=changes)


def is_unblinded(study: Study) -> bool:
    return Unblinding.objects.filter(study_id=study.pk).exists()


def unblind(*, study: Study, by: AbstractBaseUser | AnonymousUser | None, reason: str) -> Unblinding:
    """Reveal per-arm estimates of ``study`` (a PI, with a reason, audited); unblinding twice changes nothing."""
    _require_pi(by)
    if not reason.strip():
        raise PreregError("Say why the study is unblinded now.", field="reason")
    user = by if isinstance(by, User) else None
    with transaction.atomic():
        unblinding, created = Unblinding.objects.get_or_create(
            study=study, defaults={"by": user, "reason": reason.strip()}
        )
        if created:
            record_audit(action="effects.unblinded", obj=study, actor=by, detail={"reason": reason.strip()})
    return unblinding


def _log_design_change(sender: type, instance: Study | Arm, **kwargs: Any) -> None:
    study_id = instance.pk if isinstance(instance, Study) else instance.study_id
    if AnalysisPlan.objects.filter(study_id=study_id).exists():
        record_deviations(study=Study.objects.get(pk=study_id), by=acting_user())


def connect_deviation_log() -> None:
    """Called from ``ParticipantsConfig.ready``: any saved study or arm, from any path, is compared with the plan."""
    post_save.connect(_log_design_change, sender=Study, dispatch_uid="prereg.study_saved")
    post_save.connect(_log_design_change, sender=Arm, dispatch_uid="prereg.arm_saved")
    post_delete.connect(_log_design_change, sender=Arm, dispatch_uid="prereg.arm_deleted")
