"""Content sources as CSV: export, and an import that reports every bad row by line and stores all or nothing.

Rows are validated by ``ContentSourceForm``, the admin's own form, so a CSV can set nothing the admin
refuses. A row updates the source with the same platform and address (or, for a source without an
address, the same platform, connector and name) and creates one otherwise. With any bad row nothing is
stored, unless the researcher asks for a partial import: then the good rows are stored and the bad listed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field

from django import forms
from django.db import transaction
from django.utils.datastructures import MultiValueDict

from rankers.content.models import INSERTING_ARMS, ContentSource

COLUMNS = ("name", "platform", "kind", "connector", "location", "lean", "reliability", "arms", "active")
REQUIRED_COLUMNS = frozenset({"name", "platform", "kind", "connector"})
ARM_SEPARATOR = ";"
TRUE, FALSE = frozenset({"true", "yes", "y", "1"}), frozenset({"false", "no", "n", "0"})


class ContentSourceForm(forms.ModelForm):
    arms = forms.MultipleChoiceField(
        choices=[(arm, arm) for arm in INSERTING_ARMS], required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = ContentSource
        fields = COLUMNS


def sources_to_csv(sources: Iterable[ContentSource]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for source in sources:
        writer.writerow(
            [
                source.name,
                source.platform,
                source.kind,
                source.connector,
                source.location,
                source.lean,
                "" if source.reliability is None else source.reliability,
                ARM_SEPARATOR.join(source.arms),
                "true" if source.active else "false",
            ]
        )
    return out.getvalue()


@dataclass(frozen=True)
class RowError:
    line: int
    column: str  # "" when the error is about the whole row or the file
    message: str

    def __str__(self) -> str:
        return f"line {self.line}" + (f", {self.column}" if self.column else "") + f": {self.message}"


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def stored(self) -> int:
        return self.created + self.updated


def import_sources_csv(data: bytes, *, partial: bool = False) -> ImportResult:
    """Validate every row, then store them all in one transaction (or only the good ones when ``partial``)."""
    result = ImportResult()
    try:
        rows = list(_rows(data))
    except _FileError as error:
        result.errors.append(error.error)
        return result
    forms_by_line: list[tuple[int, ContentSourceForm]] = []
    seen: dict[tuple[str, ...], int] = {}
    for line, row in rows:
        form, errors = _validate(line, row, seen)
        result.errors.extend(errors)
        if form is not None:
            forms_by_line.append((line, form))
    if result.errors and not partial:
        return result
    with transaction.atomic():
        for _, form in forms_by_line:
            created = form.instance.pk is None
            form.save()
            result.created += created
            result.updated += not created
    return result


class _FileError(Exception):
    def __init__(self, error: RowError) -> None:
        self.error = error


def _rows(data: bytes) -> Iterable[tuple[int, dict[str, str]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _FileError(RowError(1, "", f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})")) from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in reader.fieldnames or ()]
    reader.fieldnames = header
    missing, unknown = REQUIRED_COLUMNS - set(header), set(header) - set(COLUMNS)
    if missing or unknown:
        problems = [f"missing columns: {', '.join(sorted(missing))}"] if missing else []
        problems += [f"unknown columns: {', '.join(sorted(unknown))}"] if unknown else []
        raise _FileError(RowError(1, "", "; ".join(problems) + f" (expected {', '.join(COLUMNS)})"))
    line = 2
    try:
        for row in reader:
            if None in row:
                raise _FileError(RowError(line, "", "more values than columns"))
            yield line, {key: (value or "").strip() for key, value in row.items()}
            line = reader.line_num + 1
    except csv.Error as exc:
        raise _FileError(RowError(reader.line_num, "", f"unreadable CSV: {exc}")) from exc


def _natural_key(row: dict[str, str]) -> tuple[str, ...]:
    if row.get("location"):
        return (row.get("platform", ""), row["location"])
    return (row.get("platform", ""), row.get("connector", ""), row.get("name", ""))


def _existing(row: dict[str, str]) -> ContentSource | None:
    if row.get("location"):
        return ContentSource.objects.filter(platform=row.get("platform", ""), location=row["location"]).first()
    return ContentSource.objects.filter(
        platform=row.get("platform", ""), connector=row.get("connector", ""), name=row.get("name", ""), location=""
    ).first()


def _validate(
    line: int, row: dict[str, str], seen: dict[tuple[str, ...], int]
) -> tuple[ContentSourceForm | None, list[RowError]]:
    errors: list[RowError] = []
    key = _natural_key(row)
    if key in seen:
        return None, [RowError(line, "", f"the same source as line {seen[key]}")]
    seen[key] = line
    data = MultiValueDict({name: [row.get(name, "")] for name in COLUMNS if name not in ("arms", "active")})
    data.setlist("arms", [arm.strip() for arm in row.get("arms", "").split(ARM_SEPARATOR) if arm.strip()])
    active = row.get("active", "").lower()
    if active in TRUE or active == "":
        data["active"] = "on"
    elif active not in FALSE:
        errors.append(RowError(line, "active", f"“{row['active']}” is not true or false"))
    form = ContentSourceForm(data, instance=_existing(row))
    if not form.is_valid():
        errors += [
            RowError(line, "" if column == "__all__" else column, str(message))
            for column, messages in form.errors.items()
            for message in messages
        ]
    return (None if errors else form), errors
