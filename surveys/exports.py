"""Survey responses (with their indexes) and in-feed answers as export datasets.

Registered with ``participants.exports`` in ``SurveysConfig.ready()``. The responses table is the one the
survey page's CSV download gives (``dashboard.response_rows``: pseudonymous ids, flattened answers, raw
and standardized indexes), with each column's type and question wording in the codebook.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from participants.exports import Column, Dataset, ExportOptions, real_participants
from participants.models import Study
from surveys import dashboard
from surveys.models import InFeedPrompt, Question

FIXED = {
    "participant": Column("participant", "string", "Pseudonymous id."),
    "wave": Column("wave", "string", "Survey wave (slug)."),
    "arm": Column("arm", "string", "Assigned arm (slug)."),
    "started_at": Column("started_at", "string", "Started (ISO 8601)."),
    "completed_at": Column("completed_at", "string", "Completed (ISO 8601); empty if not finished."),
    "source": Column("source", "string", "internal, or the external survey tool that sent it."),
}


def _wordings(study: Study) -> dict[str, str]:
    questions = Question.objects.filter(instrument__waves__study=study).values_list("key", "text")
    return dict(questions)


def _column_type(values: list[Any]) -> str:
    present = [value for value in values if value is not None and value != ""]
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "float"
    return "string"


def _response_columns(study: Study, options: ExportOptions) -> list[Column]:
    """Columns of the responses table: the fixed ones, then every answer and index any response has."""
    seen: dict[str, list[Any]] = {}
    for row in dashboard.response_rows(study, free_text=options.identifiable):
        for key, value in row.items():
            seen.setdefault(key, []).append(value)
    wordings = _wordings(study)
    columns = [FIXED[name] for name in FIXED]
    for name, values in seen.items():
        if name in FIXED:
            continue
        columns.append(_answer_column(name, _column_type(values), wordings))
    return columns


def _answer_column(name: str, kind: str, wordings: Mapping[str, str]) -> Column:
    if name.startswith("index."):
        return Column(name, "float", f"Raw outcome index {name[6:]} (supplementary 1.4).")
    if name.startswith("z."):
        return Column(name, "float", f"Index {name[2:]} standardized on the control group's baseline.")
    question, _, row = name.partition(".")
    meaning = f"Answer, row {row}." if row else "Answer."
    return Column(name, "float" if kind == "float" else "string", meaning, wordings.get(question, ""))


def _response_rows(study: Study, options: ExportOptions) -> Iterator[Sequence[Any]]:
    names = [column.name for column in _response_columns(study, options)]
    for row in dashboard.response_rows(study, free_text=options.identifiable):
        yield tuple(_cell(row.get(name)) for name in names)


def _cell(value: Any) -> Any:
    return None if value == "" else value


IN_FEED_COLUMNS = [
    Column("participant", "string", "Pseudonymous id."),
    Column("question", "string", "In-feed question key."),
    Column("sequence", "int", "1 for the participant's first prompt, then 2, 3..."),
    Column("platform", "string", "Platform it was shown on."),
    Column("first_shown_on", "date", "Study-local day it first appeared."),
    Column("days_shown", "int", "Days it was offered (at most 3)."),
    Column("wording", "string", "The wording shown, piped for this participant."),
    Column("answer", "string", "The answer (JSON); empty if not answered."),
    Column("answered_at", "timestamp", "Answered."),
    Column("dismissed_at", "timestamp", "Dismissed."),
]


def _in_feed_columns(study: Study, options: ExportOptions) -> list[Column]:
    return IN_FEED_COLUMNS


def _in_feed_rows(study: Study, options: ExportOptions) -> Iterator[Sequence[Any]]:
    prompts = (
        InFeedPrompt.objects.filter(question__study=study, participant__in=real_participants(study))
        .order_by("pk")
        .values_list(
            "participant__public_id",
            "question__key",
            "sequence",
            "platform",
            "first_shown_on",
            "days_shown",
            "text",
            "answer",
            "answered_at",
            "dismissed_at",
        )
    )
    for *row, answer, answered_at, dismissed_at in prompts.iterator(chunk_size=5_000):
        yield (*row, None if answer is None else json.dumps(answer), answered_at, dismissed_at)


DATASETS = (
    Dataset(
        "survey_responses",
        "Survey responses",
        "One row per participant and wave: answers (matrix rows as question.row), raw indexes (index.*) and"
        " indexes standardized on the control group's baseline (z.*). Free-text answers only when identifiable.",
        _response_columns,
        _response_rows,
    ),
    Dataset(
        "in_feed_answers",
        "In-feed answers",
        "One row per in-feed question offered to a participant.",
        _in_feed_columns,
        _in_feed_rows,
    ),
)
