"""Receivers for other apps' signals."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from participants.audit import record_audit
from participants.models import Participant
from participants.signals import participant_withdrawn
from rankers.models import Slate


@receiver(participant_withdrawn, dispatch_uid="rankers.erase_withdrawn_slates")
def erase_withdrawn_slates(sender: type, *, participant: Participant, erase: bool, **kwargs: Any) -> None:
    """When the consent's terms say to delete data collected so far, delete the participant's slate log.

    The ranking path already stores nothing for a withdrawn participant. Content items stay: they are the
    platforms' posts, shared by every slate that showed them, not data about this participant. Daily
    rollups are aggregates and stay as computed.
    """
    if not erase:
        return
    deleted, _ = Slate.objects.filter(participant_id=participant.public_id).delete()
    record_audit(action="slates_erased", obj=participant, detail={"slates": deleted})
