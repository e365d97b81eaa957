"""Receivers for other apps' signals."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models.signals import post_delete
from django.dispatch import receiver

from participants.models import Participant
from participants.signals import participant_erasing, participant_withdrawn
from rankers.models import Slate
from rankers.tasks_slatelog import erase_fallback_slates


@receiver(participant_erasing, dispatch_uid="rankers.erase_slates")
def erase_slates(sender: type, *, participant: Participant, **kwargs: Any) -> dict[str, int]:
    """Delete the participant's slate log, in the withdrawal's transaction.

    The ranking path already stores nothing for a withdrawn participant. Content items stay: they are the
    platforms' posts, shared by every slate that showed them, not data about this participant. Daily
    rollups are aggregates and stay as computed.
    """
    deleted, _ = Slate.objects.filter(participant_id=participant.public_id).delete()
    return {"slates": deleted}


@receiver(participant_withdrawn, dispatch_uid="rankers.erase_fallback_slates")
def erase_withdrawn_fallback_slates(sender: type, *, participant: Participant, erase: bool, **kwargs: Any) -> None:
    """After commit: the participant's slates still in Redis, and any a request in flight wrote since.

    Queued after the slate writer's grace period, so a slate answered just before the withdrawal is
    caught too; the task retries until Redis answers, and the drain drops erased participants' slates
    meanwhile.
    """
    if erase:
        countdown = settings.RANK_WRITE_GRACE_S + 5
        erase_fallback_slates.apply_async(args=[participant.public_id], countdown=countdown)


@receiver(post_delete, sender=Participant, dispatch_uid="rankers.delete_test_participant_slates")
def delete_test_participant_slates(sender: type, *, instance: Participant, **kwargs: Any) -> None:
    """A deleted test participant takes its slates along (only test participants can be deleted)."""
    if instance.is_test:
        Slate.objects.filter(participant_id=instance.public_id).delete()
