from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.apps import AppConfig
from django.utils import timezone


class SurveysConfig(AppConfig):
    name = "surveys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from participants.exports import register_datasets
        from participants.launch import register_check
        from participants.signals import participant_erasing, participant_withdrawn
        from participants.status_sections import register_status_section
        from surveys.exports import DATASETS
        from surveys.launch_checks import waves_ready

        participant_withdrawn.connect(_cancel_on_withdrawal, dispatch_uid="surveys.cancel_on_withdrawal")
        participant_erasing.connect(_erase_answers, dispatch_uid="surveys.erase_answers")
        register_status_section(_next_survey_section)
        register_datasets(*DATASETS)
        register_check(waves_ready)


def _cancel_on_withdrawal(sender: Any, *, participant: Any, erase: bool, **kwargs: Any) -> None:
    from surveys.messaging import cancel_for_withdrawal

    cancel_for_withdrawal(participant=participant, at=timezone.now())


def _erase_answers(sender: Any, *, participant: Any, **kwargs: Any) -> dict[str, int]:
    """In the withdrawal's transaction, so that nothing is recorded as erased that was not."""
    from surveys.messaging import erase_answers

    return erase_answers(participant=participant)


def _next_survey_section(participant: Any, at: dt.datetime) -> Mapping[str, Any]:
    from surveys.messaging import next_survey

    return {"next_survey": next_survey(participant=participant, at=at)}
