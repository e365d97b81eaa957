"""One survey page as a Django form, built from the instrument's questions.

A question with statements or rows (a Likert grid, sliders per platform, the headline grid) becomes
one field per row, named ``<question>__<row>``; a slider row that may be "Not applicable" gets a
checkbox ``<question>__<row>__na``; a choice with a write-in gets ``<question>__write_in``. Cleaned
data is folded back into the answer shape stored on the response: ``{question: value}`` or
``{question: {row: value}}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django import forms

from surveys.models import Question
from surveys.piping import pipe

Kind = Question.Kind
NOT_APPLICABLE = "na"


@dataclass(frozen=True)
class Row:
    """A field of a grid question, as the template shows it."""

    text: str
    field: forms.BoundField
    na: forms.BoundField | None = None


@dataclass(frozen=True)
class ShownQuestion:
    question: Question
    text: str
    field: forms.BoundField | None = None
    rows: tuple[Row, ...] = ()
    write_in: forms.BoundField | None = None

    @property
    def errors(self) -> list[str]:
        fields = [self.field, self.write_in, *(r.field for r in self.rows), *(r.na for r in self.rows)]
        return [str(e) for f in fields if f is not None for e in f.errors]


def _coerce(options: Sequence[Mapping[str, Any]]) -> Any:
    by_text = {str(o["value"]): o["value"] for o in options}
    return lambda text: by_text[text]


def _choices(options: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    return [(str(o["value"]), str(o["label"])) for o in options]


def _choice_field(question: Question, label: str, *, required: bool) -> forms.Field:
    return forms.TypedChoiceField(
        label=label,
        choices=_choices(question.options),
        coerce=_coerce(question.options),
        widget=forms.RadioSelect,
        required=required,
        error_messages={"required": "Please choose an answer."},
    )


def _number_field(question: Question, label: str, *, required: bool) -> forms.Field:
    low, high = question.min_value, question.max_value
    message = f"Please enter a whole number from {low} to {high}." if low is not None else "Please enter a number."
    return forms.IntegerField(
        label=label,
        min_value=low,
        max_value=high,
        required=required,
        widget=forms.NumberInput(attrs={"min": low, "max": high, "step": 1, "inputmode": "numeric"}),
        error_messages={
            "required": "Please give an answer.",
            "invalid": message,
            "min_value": message,
            "max_value": message,
        },
    )


class SurveyPageForm(forms.Form):
    def __init__(
        self,
        data: Mapping[str, Any] | None,
        *,
        questions: Sequence[Question],
        words: Mapping[str, str],
        initial_answers: Mapping[str, Any],
    ) -> None:
        super().__init__(data, initial=_initial(questions, initial_answers))
        self.questions = list(questions)
        self.words = words
        for question in self.questions:
            self._add_fields(question)

    def _add_fields(self, q: Question) -> None:
        required = q.required
        if q.kind in (Kind.SINGLE, Kind.LIKERT) and not q.items:
            self.fields[q.key] = _choice_field(q, pipe(q.text, self.words), required=required)
        elif q.kind in (Kind.LIKERT, Kind.HEADLINES):
            for item in q.items:
                self.fields[f"{q.key}__{item['key']}"] = _choice_field(
                    q, pipe(item["text"], self.words), required=required
                )
        elif q.kind == Kind.MULTIPLE:
            self.fields[q.key] = forms.TypedMultipleChoiceField(
                label=pipe(q.text, self.words),
                choices=_choices(q.options),
                coerce=_coerce(q.options),
                widget=forms.CheckboxSelectMultiple,
                required=required,
                error_messages={"required": "Please choose at least one answer."},
            )
        elif q.kind in (Kind.SLIDER, Kind.THERMOMETER) and q.items:
            for item in q.items:
                name = f"{q.key}__{item['key']}"
                self.fields[name] = _number_field(q, item["text"], required=False)
                if q.allow_not_applicable:
                    self.fields[f"{name}__na"] = forms.BooleanField(label="Not applicable", required=False)
        elif q.kind in (Kind.SLIDER, Kind.THERMOMETER, Kind.NUMERIC):
            self.fields[q.key] = _number_field(q, pipe(q.text, self.words), required=required)
        elif q.kind == Kind.TEXT:
            self.fields[q.key] = forms.CharField(
                label=pipe(q.text, self.words),
                required=required,
                max_length=2000,
                widget=forms.Textarea(attrs={"rows": 3}),
            )
        if q.write_in_option:
            self.fields[f"{q.key}__write_in"] = forms.CharField(label="Please specify", required=False, max_length=200)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for q in self.questions:
            if q.write_in_option and cleaned.get(q.key) == q.write_in_option and not cleaned.get(f"{q.key}__write_in"):
                self.add_error(f"{q.key}__write_in", "Please tell us which.")
            if q.kind in (Kind.SLIDER, Kind.THERMOMETER) and q.items and q.required:
                for item in q.items:
                    name = f"{q.key}__{item['key']}"
                    if cleaned.get(name) is None and not cleaned.get(f"{name}__na") and name not in self.errors:
                        hint = " or tick “Not applicable”" if q.allow_not_applicable else ""
                        self.add_error(name, f"Please move the slider{hint}.")
        return cleaned

    def answers(self) -> dict[str, Any]:
        """The cleaned page in the stored answer shape."""
        data = self.cleaned_data
        answers: dict[str, Any] = {}
        for q in self.questions:
            if q.items and q.kind != Kind.MULTIPLE:
                answers[q.key] = {
                    item["key"]: NOT_APPLICABLE
                    if data.get(f"{q.key}__{item['key']}__na")
                    else data.get(f"{q.key}__{item['key']}")
                    for item in q.items
                }
            else:
                answers[q.key] = data.get(q.key)
            if q.write_in_option and data.get(q.key) == q.write_in_option:
                answers[f"{q.key}_write_in"] = data.get(f"{q.key}__write_in", "")
        return answers

    def shown(self) -> list[ShownQuestion]:
        """The page's questions with their bound fields, in order, for the template."""
        shown = []
        for q in self.questions:
            write_in = self[f"{q.key}__write_in"] if q.write_in_option else None
            if q.items and q.kind != Kind.MULTIPLE:
                rows = tuple(
                    Row(
                        text=pipe(item["text"], self.words),
                        field=self[f"{q.key}__{item['key']}"],
                        na=self[f"{q.key}__{item['key']}__na"]
                        if f"{q.key}__{item['key']}__na" in self.fields
                        else None,
                    )
                    for item in q.items
                )
                shown.append(ShownQuestion(q, pipe(q.text, self.words), rows=rows, write_in=write_in))
            else:
                shown.append(ShownQuestion(q, pipe(q.text, self.words), field=self[q.key], write_in=write_in))
        return shown


def _initial(questions: Sequence[Question], answers: Mapping[str, Any]) -> dict[str, Any]:
    """Saved answers as initial field values, so a resumed or revisited page shows them."""
    initial: dict[str, Any] = {}
    for q in questions:
        value = answers.get(q.key)
        if value is None:
            continue
        if isinstance(value, Mapping):
            for row, row_value in value.items():
                if row_value == NOT_APPLICABLE:
                    initial[f"{q.key}__{row}__na"] = True
                else:
                    initial[f"{q.key}__{row}"] = row_value
        else:
            initial[q.key] = value
        if f"{q.key}_write_in" in answers:
            initial[f"{q.key}__write_in"] = answers[f"{q.key}_write_in"]
    return initial
