"""Withdrawal reaches the slate log: deleted when the consent's terms say so, kept otherwise."""

from __future__ import annotations

import pytest
from django.utils import timezone

from participants.models import Arm, AuditEvent, ConsentDocument
from participants.services import withdraw_participant
from rankers.management.commands.enroll_test_participant import create_test_participant
from rankers.models import Slate
from tests.factories import ArmFactory, ConsentDocumentFactory, StudyFactory

pytestmark = pytest.mark.django_db


def control_arm(on_withdrawal: str) -> Arm:
    study = StudyFactory()
    ConsentDocumentFactory(study=study, on_withdrawal=on_withdrawal)
    return ArmFactory(study=study, slug="control", ranker_key="control", is_control=True)


def log_slates(study_id: int, public_id: str, count: int) -> None:
    for _ in range(count):
        Slate.objects.create(
            study_id=study_id, served_at=timezone.now(), participant_id=public_id, arm="control",
            effective_arm="control", ranker_key="control", platform="reddit", content_type="post",
            original_ids=["a", "b"], returned_ids=["a", "b"], served_ms=500.0, n_items=2,
        )  # fmt: skip


def test_withdrawal_under_delete_terms_erases_the_participants_slates_only(
    django_capture_on_commit_callbacks,
) -> None:
    arm = control_arm(ConsentDocument.OnWithdrawal.DELETE)
    leaving, _ = create_test_participant(arm=arm, past_baseline=True)
    staying, _ = create_test_participant(arm=arm, past_baseline=True)
    log_slates(arm.study_id, leaving.public_id, 3)
    log_slates(arm.study_id, staying.public_id, 2)

    with django_capture_on_commit_callbacks(execute=True):
        assert withdraw_participant(participant=leaving, by=None, reason="no longer interested")

    assert not Slate.objects.filter(participant_id=leaving.public_id).exists()
    assert Slate.objects.filter(participant_id=staying.public_id).count() == 2
    audit = AuditEvent.objects.get(action="participant.erased")
    assert (audit.object_id, audit.detail["slates"]) == (leaving.public_id, 3)


def test_withdrawal_under_keep_terms_keeps_the_slate_log(django_capture_on_commit_callbacks) -> None:
    arm = control_arm(ConsentDocument.OnWithdrawal.KEEP)
    leaving, _ = create_test_participant(arm=arm, past_baseline=True)
    log_slates(arm.study_id, leaving.public_id, 3)

    with django_capture_on_commit_callbacks(execute=True):
        assert withdraw_participant(participant=leaving, by=None, reason="busy")

    assert Slate.objects.filter(participant_id=leaving.public_id).count() == 3
    assert not AuditEvent.objects.filter(action="participant.erased").exists()
