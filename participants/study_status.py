"""The one way a study's status changes: draft → recruiting → running → closed, and reopening.

Every change goes through ``change_study_status``, which checks the move is allowed, writes it under a
row lock and records an audit event naming who, from what, to what and why. The rules:

1. Recruiting (and reopening a closed study) needs the launch checklist to pass (``launch.py``).
2. Back to Draft only while nobody has been randomized: the arms, their weights and the seed define
   the allocation sequence, and a randomized participant fixes them (``design_locked``).
3. Closing and reopening are deliberate PI actions: they need the change-study permission and a reason.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, PermissionsMixin
from django.db import transaction

from participants import launch
from participants.audit import record_audit
from participants.models import Assignment, Study

Status = Study.Status

TRANSITIONS: dict[str, tuple[str, ...]] = {
    Status.DRAFT: (Status.RECRUITING,),
    Status.RECRUITING: (Status.RUNNING, Status.CLOSED, Status.DRAFT),
    Status.RUNNING: (Status.CLOSED,),
    Status.CLOSED: (Status.RECRUITING, Status.RUNNING),
}
NEEDS_REASON = (Status.CLOSED, Status.DRAFT)  # and every move out of Closed (reopening)
VERBS = {
    Status.DRAFT: "Return to draft",
    Status.RECRUITING: "Start recruiting",
    Status.RUNNING: "Mark as running",
    Status.CLOSED: "Close the study",
}


class StudyStatusError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def anyone_randomized(study: Study) -> bool:
    """Whether a real participant has an arm (test participants use their own sequence and do not count)."""
    return Assignment.objects.filter(arm__study=study, participant__is_test=False).exists()


def design_locked(study: Study) -> bool:
    """Arms, weights, control flag, ranker keys, strata and seed are fixed once a study leaves Draft."""
    return study.status != Status.DRAFT


def needs_reason(current: str, to: str) -> bool:
    return to in NEEDS_REASON or current == Status.CLOSED


def allowed_transitions(study: Study) -> list[str]:
    return list(TRANSITIONS[study.status])


def transition_refusal(study: Study, to: str) -> str | None:
    """Why ``study`` may not move to ``to`` now (None: it may)."""
    if to not in TRANSITIONS[study.status]:
        return f"A {study.status} study cannot move to {to}."
    if to == Status.DRAFT and anyone_randomized(study):
        return "Participants have been randomized: the design is locked and the study cannot return to draft."
    if to in Study.SIGNUP_STATUSES:
        problems = launch.launch_problems(study)
        if problems:
            return "The launch checklist does not pass yet. " + " ".join(problems)
    return None


def change_study_status(
    *, study: Study, to: str, by: AbstractBaseUser | AnonymousUser | None, reason: str = ""
) -> Study:
    """Move the study to ``to``, or raise ``StudyStatusError`` saying why; moving to the current status is a no-op."""
    if by is not None and not (isinstance(by, PermissionsMixin) and by.has_perm("participants.change_study")):
        raise StudyStatusError("Only a PI may change a study's status.")
    reason = reason.strip()
    with transaction.atomic():
        locked = Study.objects.select_for_update().get(pk=study.pk)
        if locked.status == to:
            return locked
        if needs_reason(locked.status, to) and not reason:
            raise StudyStatusError("Say why: closing, reopening and returning to draft are recorded with a reason.")
        refusal = transition_refusal(locked, to)
        if refusal:
            raise StudyStatusError(refusal)
        previous = locked.status
        Study.objects.filter(pk=locked.pk).update(status=to)
        record_audit(
            action="study.status_changed",
            obj=locked,
            actor=by,
            detail={"from": previous, "to": to, "reason": reason},
        )
    study.status = to
    return study
