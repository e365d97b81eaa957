"""Extra context for the participant's status page, provided by other apps without this app importing them.

An app registers a function in its ``AppConfig.ready()``; the status view merges what each returns
into its template context. The surveys app provides ``next_survey`` this way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from participants.models import Participant

StatusSection = Callable[[Participant, dt.datetime], Mapping[str, Any]]

_SECTIONS: list[StatusSection] = []


def register_status_section(section: StatusSection) -> None:
    if section not in _SECTIONS:
        _SECTIONS.append(section)


def status_sections_context(participant: Participant, at: dt.datetime) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for section in _SECTIONS:
        context.update(section(participant, at))
    return context
