"""Survey workflows: loading the library, inviting, recording answers and completions, reminders.

Every function is keyword-only and safe to call twice.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F, Field

from surveys import library
from surveys.models import Instrument, Question


def load_instruments() -> list[tuple[Instrument, bool, int]]:
    """Write ``library.INSTRUMENTS`` into the database: (instrument, created, number of questions) each.

    Rerunning updates wording and scales in place (questions are matched by key) and removes
    questions the library no longer has, so the database always equals the library.
    """
    loaded = []
    with transaction.atomic():
        for spec in library.INSTRUMENTS:
            instrument, created = Instrument.objects.update_or_create(
                slug=spec["slug"], defaults={"name": spec["name"], "description": spec["description"]}
            )
            keys = [question["key"] for question in spec["questions"]]
            instrument.questions.exclude(key__in=keys).delete()
            # Positions are unique: park the existing rows out of the way before renumbering.
            instrument.questions.update(position=F("position") + 100_000)
            for position, question in enumerate(spec["questions"], start=1):
                fields = {name: question.get(name, _field_default(name)) for name in library.QUESTION_FIELDS}
                Question.objects.update_or_create(
                    instrument=instrument, key=question["key"], defaults={"position": position, **fields}
                )
            loaded.append((instrument, created, len(keys)))
    return loaded


def _field_default(name: str) -> Any:
    field = Question._meta.get_field(name)
    assert isinstance(field, Field)
    return field.get_default()
