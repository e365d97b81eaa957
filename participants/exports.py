"""Research exports: datasets that stream rows, CSV and Parquet writers, the codebook, and the build of one zip.

Each app registers the datasets it owns in its ``AppConfig.ready()`` (``register_datasets``), so this app
exports slates and survey answers without importing the apps that hold them. A dataset declares its
columns (name, type, meaning, question wording) and yields plain tuples in that order from a server-side
cursor; writers take them a row group at a time, so an export of any size runs in bounded memory.

Steps of ``build_export``:
1. claim the export (queued -> running, a conditional update: a second run of the task does nothing);
2. write each dataset to its own file in a work folder, updating the progress every row group;
3. write the codebook (Markdown and JSON) and add the pre-registration file when a provider gives one;
4. zip the folder under ``PRC_EXPORT_DIR``, mark the export done and audit it.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import functools
import io
import json
import shutil
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby, islice
from operator import itemgetter
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from participants.audit import record_audit
from participants.balance import stays_by_participant
from participants.behaviour import installed_days, panel_days
from participants.models import (
    AnalysisPlan,
    Assignment,
    DailyBehaviour,
    Export,
    Participant,
    ParticipantQuerySet,
    Payment,
    Study,
)
from participants.paper import PLATFORMS
from participants.roles import EXPORT_DATA, EXPORT_IDENTIFIABLE

ROW_GROUP_ROWS = 65_536  # rows held in memory at once, and the Parquet row group size
COPY_BLOCK_BYTES = 8 << 20  # CSV read from COPY at a time (one Parquet row group each)
CHUNK = 5_000  # rows fetched from PostgreSQL at a time
ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "decimal": pa.decimal128(12, 2),
}
DUCKDB_TYPES = {
    "string": "VARCHAR",
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMPTZ",
    "date": "DATE",
    "decimal": "DECIMAL(12,2)",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # a key of ARROW_TYPES
    description: str
    question: str = ""  # the wording a participant read, for survey answers


@dataclass(frozen=True)
class ExportOptions:
    identifiable: bool = False


@dataclass(frozen=True)
class Dataset:
    """A table an export can hold. ``columns`` takes the study and the options, and so does one of:

    - ``rows``: tuples in column order, streamed (never a list of everything);
    - ``query``: SQL and its parameters selecting the columns in order, for the big tables: PostgreSQL
      sends the rows as CSV through ``COPY`` and Arrow parses them in C++, with no Python object per row.
    """

    name: str
    title: str
    description: str
    columns: Callable[[Study, ExportOptions], list[Column]]
    rows: Callable[[Study, ExportOptions], Iterator[Sequence[Any]]] | None = None
    query: Callable[[Study, ExportOptions], tuple[str, Sequence[Any]]] | None = None


# A function that returns the pre-registration file of a study, (file name, bytes), or None.
PreregistrationProvider = Callable[[Study], tuple[str, bytes] | None]

_DATASETS: dict[str, Dataset] = {}
_PREREGISTRATION: list[PreregistrationProvider] = []


def register_datasets(*datasets: Dataset) -> None:
    for dataset in datasets:
        _DATASETS.setdefault(dataset.name, dataset)


def register_preregistration(provider: PreregistrationProvider) -> None:
    if provider not in _PREREGISTRATION:
        _PREREGISTRATION.append(provider)


def datasets() -> list[Dataset]:
    """Every registered dataset, in a stable order (this app's first, then as registered)."""
    return list(_DATASETS.values())


def dataset(name: str) -> Dataset:
    return _DATASETS[name]


# --- writers -------------------------------------------------------------------------------------


class Sink(Protocol):
    def write(self, rows: Sequence[Sequence[Any]]) -> None: ...
    def close(self) -> None: ...


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


class CsvSink:
    def __init__(self, path: Path, columns: Sequence[Column]) -> None:
        self.file = path.open("w", newline="", encoding="utf-8")
        self.writer = csv.writer(self.file)
        self.writer.writerow([column.name for column in columns])

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        self.writer.writerows([_csv_value(value) for value in row] for row in rows)

    def close(self) -> None:
        self.file.close()


class ParquetSink:
    """One row group per ``write``: columns are built from the chunk and the chunk is let go."""

    def __init__(self, path: Path, columns: Sequence[Column]) -> None:
        self.types = [ARROW_TYPES[column.type] for column in columns]
        self.schema = pa.schema([pa.field(column.name, kind) for column, kind in zip(columns, self.types, strict=True)])
        self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        arrays = [
            pa.array(values if kind != pa.string() else [_text(value) for value in values], type=kind)
            for values, kind in zip(zip(*rows, strict=True), self.types, strict=True)
        ]
        self.writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema), row_group_size=len(rows))

    def close(self) -> None:
        self.writer.close()


def _text(value: Any) -> str | None:
    """A string column's cell: JSON for structures, the text of anything else (a survey answer may be a number)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def open_sink(path: Path, columns: Sequence[Column], fmt: str) -> Sink:
    return ParquetSink(path, columns) if fmt == Export.Format.PARQUET else CsvSink(path, columns)


def write_rows(rows: Iterable[Sequence[Any]], sink: Sink, *, progress: Callable[[int], None] | None = None) -> int:
    """Copy rows into the sink a row group at a time; returns how many. ``progress`` gets each group's size."""
    iterator = iter(rows)
    total = 0
    while chunk := list(islice(iterator, ROW_GROUP_ROWS)):
        sink.write(chunk)
        total += len(chunk)
        if progress is not None:
            progress(len(chunk))
    sink.close()
    return total


class _CopyStream(io.RawIOBase):
    """The chunks of a ``COPY ... TO STDOUT`` (one per row) as a file that Arrow's CSV reader reads in blocks."""

    def __init__(self, chunks: Iterable[memoryview]) -> None:
        self.chunks = iter(chunks)
        self.pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(target):
            if not self.pending:
                chunk = next(self.chunks, None)
                if chunk is None:
                    break
                self.pending = memoryview(chunk).cast("B")
            size = min(len(target) - filled, len(self.pending))
            target[filled : filled + size] = self.pending[:size]
            self.pending = self.pending[size:]
            filled += size
        return filled


def _arrow_schema(columns: Sequence[Column]) -> pa.Schema:
    return pa.schema([pa.field(column.name, ARROW_TYPES[column.type]) for column in columns])


def copy_rows(
    sql: str,
    params: Sequence[Any],
    columns: Sequence[Column],
    path: Path,
    fmt: str,
    *,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write a query's rows to ``path`` (CSV or Parquet) through COPY and Arrow, a block at a time; returns
    how many. Booleans must be selected as text (``x::text``: 'true'/'false')."""
    schema = _arrow_schema(columns)
    convert = pacsv.ConvertOptions(column_types=schema, strings_can_be_null=True, quoted_strings_can_be_null=False)
    # The header line is skipped (the names are ours) but keeps an empty result from being an empty file.
    names = [column.name for column in columns]
    read = pacsv.ReadOptions(block_size=COPY_BLOCK_BYTES, column_names=names, skip_rows=1)
    statement = f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER true)"
    total = 0
    with connection.cursor() as cursor, cursor.cursor.copy(statement, params) as copy:
        reader = pacsv.open_csv(_CopyStream(copy), read_options=read, convert_options=convert)
        writer: Any = (
            pq.ParquetWriter(path, schema, compression="zstd")
            if fmt == Export.Format.PARQUET
            else pacsv.CSVWriter(path, schema)
        )
        try:
            for batch in reader:
                writer.write_batch(batch)
                total += batch.num_rows
                if progress is not None:
                    progress(batch.num_rows)
        finally:
            writer.close()
    return total


# --- codebook ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Written:
    dataset: Dataset
    file: str
    columns: list[Column]
    rows: int


HOW_TO_READ = """## Reading these files

Every table is one file; `participant` is the same pseudonymous id in all of them, so they join on it.
With [DuckDB](https://duckdb.org) (no database server needed; it reads files larger than memory):

```sql
-- duckdb
SELECT a.arm_name, p.platform, avg(p.active_minutes) AS minutes_per_day
FROM '{panel}' p JOIN '{assignments}' a USING (participant)
GROUP BY ALL ORDER BY ALL;
```

With [polars](https://pola.rs) (lazily, so only the columns and rows asked for are read):

```python
import polars as pl
panel = pl.scan_{reader}("{panel}")
arms = pl.scan_{reader}("{assignments}")
panel.join(arms, on="participant").group_by("arm_name", "platform").agg(pl.col("active_minutes").mean()).collect()
```

The slate tables of a whole study are large (the paper logged 196 million items): query them where they
lie (`SELECT count(*) FROM 'slate_items.parquet'`) rather than loading them, and never point analysis at
the production database. CSV files have a header row; empty cells are missing values; times are ISO 8601
in UTC; JSON-valued cells are JSON text.
"""


def codebook_markdown(study: Study, export: Export, written: Sequence[Written], prereg: str | None) -> str:
    privacy = (
        "**identifiable**: includes vendor ids and screener answers; keep it where the consent allows"
        if export.identifiable
        else "de-identified: participants appear only under pseudonymous ids; no contact data, no vendor ids"
    )
    lines = [
        f"# Codebook: {study.name}",
        "",
        f"Export {export.pk}, made {timezone.now():%Y-%m-%d %H:%M} UTC for "
        f"{export.requested_by.get_username() if export.requested_by else 'the system'}; {privacy}.",
        "",
        f"Pre-registration: `{prereg}` (in this archive)."
        if prereg
        else "Pre-registration: none is locked for this study yet, so none is included.",
        "",
    ]
    for item in written:
        lines += [f"## {item.dataset.title} (`{item.file}`, {item.rows} rows)", "", item.dataset.description, ""]
        lines += ["| variable | type | meaning | question wording |", "|---|---|---|---|"]
        for column in item.columns:
            wording = column.question.replace("|", "\\|").replace("\n", " ")
            lines.append(f"| `{column.name}` | {DUCKDB_TYPES[column.type]} | {column.description} | {wording} |")
        lines.append("")
    ext = export.format
    reader = "parquet" if ext == Export.Format.PARQUET else "csv"
    lines.append(HOW_TO_READ.format(panel=f"daily_panel.{ext}", assignments=f"assignments.{ext}", reader=reader))
    return "\n".join(lines)


def codebook_json(export: Export, written: Sequence[Written]) -> dict[str, Any]:
    return {
        "export": export.pk,
        "study": export.study.slug,
        "identifiable": export.identifiable,
        "format": export.format,
        "datasets": [
            {
                "name": item.dataset.name,
                "file": item.file,
                "rows": item.rows,
                "columns": [column.__dict__ for column in item.columns],
            }
            for item in written
        ],
    }


# --- building an export --------------------------------------------------------------------------


def export_dir() -> Path:
    path = Path(settings.PRC_EXPORT_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def export_path(export: Export) -> Path:
    return export_dir() / export.file_name


class _Progress:
    """Writes an export's progress on its own autocommit connection: the rows are read inside a transaction
    (so that PostgreSQL streams them from a server-side cursor), and a researcher must see the progress
    before that transaction ends."""

    def __init__(self, export_id: int) -> None:
        self.export_id = export_id
        self.conn = psycopg.connect(**connection.get_connection_params(), autocommit=True)

    def update(self, *, rows: int = 0, dataset: str | None = None, datasets_done: int | None = None) -> None:
        self.conn.execute(
            "UPDATE participants_export SET rows_done = rows_done + %s, dataset = coalesce(%s, dataset),"
            " datasets_done = coalesce(%s, datasets_done) WHERE id = %s",
            (rows, dataset, datasets_done, self.export_id),
        )

    def close(self) -> None:
        self.conn.close()


def _advance(progress: _Progress, rows: int) -> None:
    progress.update(rows=rows)


def build_export(export_id: int) -> bool:
    """Build one export (the steps in the module's docstring); False if another run has it already."""
    claimed = Export.objects.filter(pk=export_id, status=Export.Status.QUEUED).update(
        status=Export.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return False
    export = Export.objects.select_related("study", "requested_by").get(pk=export_id)
    work = export_dir() / f"export-{export.pk}.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        written = _write_datasets(export, work)
        prereg = _write_preregistration(export.study, work)
        (work / "codebook.md").write_text(codebook_markdown(export.study, export, written, prereg), encoding="utf-8")
        (work / "codebook.json").write_text(json.dumps(codebook_json(export, written), indent=2), encoding="utf-8")
        file_name = f"{export.study.slug}-export-{export.pk}.zip"
        size = _zip(work, export_dir() / file_name)
    except Exception as exc:
        Export.objects.filter(pk=export.pk).update(
            status=Export.Status.FAILED, finished_at=timezone.now(), error=str(exc)[:500]
        )
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    Export.objects.filter(pk=export.pk).update(
        status=Export.Status.DONE,
        finished_at=timezone.now(),
        file_name=file_name,
        size_bytes=size,
        dataset="",
        datasets_done=len(written),
        rows_done=sum(item.rows for item in written),
    )
    record_audit(
        action="export.completed",
        obj=export.study,
        actor=export.requested_by,
        detail={
            "export": export.pk,
            "rows": {item.dataset.name: item.rows for item in written},
            "identifiable": export.identifiable,
        },
    )
    return True


def _write_datasets(export: Export, work: Path) -> list[Written]:
    options = ExportOptions(identifiable=export.identifiable)
    written = []
    progress = _Progress(export.pk)
    try:
        for done, name in enumerate(export.datasets):
            table = dataset(name)
            columns = table.columns(export.study, options)
            file = f"{name}.{export.format}"
            progress.update(dataset=name)
            advance = functools.partial(_advance, progress)
            with transaction.atomic():  # server-side cursors stream only inside a transaction
                if table.query is not None:
                    sql, params = table.query(export.study, options)
                    rows = copy_rows(sql, params, columns, work / file, export.format, progress=advance)
                else:
                    assert table.rows is not None
                    sink = open_sink(work / file, columns, export.format)
                    rows = write_rows(table.rows(export.study, options), sink, progress=advance)
            written.append(Written(table, file, columns, rows))
            progress.update(datasets_done=done + 1)
    finally:
        progress.close()
    return written


def frozen_plan_file(study: Study) -> tuple[str, bytes] | None:
    """The study's pre-registration as frozen (``participants.prereg``), its hash, the document as it stands,
    and every deviation since; None before a PI froze it."""
    plan = AnalysisPlan.objects.filter(study=study).first()
    if plan is None:
        return None
    deviations = [
        {"at": d.at.isoformat(), "by": d.actor_label, "setting": d.setting, "before": d.before, "after": d.after,
         "reason": d.reason}
        for d in plan.deviations.all()
    ]  # fmt: skip
    document = {
        "frozen_hash": plan.frozen_hash,
        "frozen_at": plan.frozen_at.isoformat(),
        "study_status_at_freeze": plan.study_status_at_freeze,
        "frozen": plan.frozen,
        "current": plan.current,
        "deviations": deviations,
    }
    return "preregistration.json", json.dumps(document, indent=2, sort_keys=True).encode()


def _write_preregistration(study: Study, work: Path) -> str | None:
    for provider in (frozen_plan_file, *_PREREGISTRATION):
        found = provider(study)
        if found is not None:
            name, content = found
            (work / name).write_bytes(content)
            return name
    return None


def _zip(folder: Path, target: Path) -> int:
    partial = target.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for path in sorted(folder.iterdir()):
            # Parquet is compressed already; deflating it again costs time and saves nothing.
            kind = zipfile.ZIP_STORED if path.suffix == ".parquet" else zipfile.ZIP_DEFLATED
            archive.write(path, arcname=path.name, compress_type=kind)
    partial.replace(target)
    return target.stat().st_size


# --- this app's datasets -------------------------------------------------------------------------


def real_participants(study: Study) -> ParticipantQuerySet:
    """The study's participants whose rows are exported: test participants are left out (``Participant.real``)."""
    return Participant.objects.filter(study=study).real()


def _participant_columns(study: Study, options: ExportOptions) -> list[Column]:
    columns = [
        Column("participant", "string", "Pseudonymous id (the same in every table)."),
        Column("source", "string", "Recruitment source (panel vendor) slug."),
        Column("stage", "string", "Furthest stage: screened_in, consented, enrolled, withdrawn..."),
        Column("created_at", "timestamp", "Arrived from the vendor link and started screening."),
        Column("consented_at", "timestamp", "Gave consent."),
        Column("enrolled_at", "timestamp", "Extension first registered."),
        Column("included_at", "timestamp", "Kept the extension long enough and finished the baseline (analysed)."),
        Column("baseline_completed_at", "timestamp", "Baseline survey completed."),
        Column("withdrawn_at", "timestamp", "Left the study."),
        Column("erased", "bool", "Data collected before withdrawal was erased (delete terms)."),
        Column("strata", "string", "Randomization strata answers (JSON)."),
    ]
    if options.identifiable:
        columns += [
            Column("vendor_pid", "string", "The panel vendor's id of the person (identifying)."),
            Column("screener_answers", "string", "All screener answers (JSON)."),
        ]
    return columns


def _participant_rows(study: Study, options: ExportOptions) -> Iterator[Sequence[Any]]:
    fields = [
        "public_id",
        "source__slug",
        "stage",
        "created_at",
        "consented_at",
        "enrolled_at",
        "included_at",
        "baseline_completed_at",
        "withdrawn_at",
        "erased_at",
        "strata",
    ]
    if options.identifiable:
        fields += ["vendor_pid", "screener_answers"]
    people = real_participants(study).order_by("pk").values_list(*fields)
    for row in people.iterator(chunk_size=CHUNK):
        yield (*row[:9], row[9] is not None, *row[10:])


def _assignment_columns(study: Study, options: ExportOptions) -> list[Column]:
    return [
        Column("participant", "string", "Pseudonymous id."),
        Column("arm", "string", "Assigned arm (slug)."),
        Column("arm_name", "string", "Assigned arm (name)."),
        Column("is_control", "bool", "The arm is the control arm."),
        Column("stratum", "string", "Opaque code of the randomization stratum."),
        Column("position", "int", "Index in the stratum's allocation sequence."),
        Column("assigned_at", "timestamp", "When the arm was drawn."),
    ]


def _assignment_rows(study: Study, options: ExportOptions) -> Iterator[Sequence[Any]]:
    rows = (
        Assignment.objects.filter(participant__in=real_participants(study))
        .order_by("pk")
        .values_list(
            "participant__public_id", "arm__slug", "arm__name", "arm__is_control", "stratum", "position", "assigned_at"
        )
    )
    yield from rows.iterator(chunk_size=CHUNK)


def _panel_columns(study: Study, options: ExportOptions) -> list[Column]:
    return [
        Column("participant", "string", "Pseudonymous id."),
        Column("arm", "string", "Assigned arm (slug); empty if not assigned."),
        Column("platform", "string", "facebook, reddit or twitter."),
        Column("day", "date", f"Study day (calendar day in {study.timezone})."),
        Column("days_since_enrolment", "int", "Days since the extension was first registered (0 = that day)."),
        Column("active_minutes", "int", "Minutes the platform was the active page with activity (paper, 1.5)."),
        Column("views", "int", "Items newly displayed."),
        Column("engagements", "int", "Likes, shares, comments, reactions, votes... on items."),
    ]


def _panel_rows(study: Study, options: ExportOptions) -> Iterator[Sequence[Any]]:
    """S1's panel, streamed one participant at a time: for a participant S1 follows (included and assigned),
    every installed day on every platform, 0 where nothing was reported (``behaviour.installed_days`` and
    ``panel_days``, the rules ``surveys.effects.daily_panel`` uses); for anyone else the reported rows only."""
    rollup = DailyBehaviour.objects.filter(study_id=study.pk, participant__in=real_participants(study))
    last_day = rollup.aggregate(last=Max("day"))["last"]
    if last_day is None:
        return
    zone = ZoneInfo(study.timezone)
    followed = {pk: stay.left_on for pk, stay in stays_by_participant(study).items()}
    reports = groupby(
        rollup.order_by("participant_id", "day", "platform")
        .values_list("participant_id", "day", "platform", "active_minutes", "views", "engagements")
        .iterator(chunk_size=CHUNK),
        key=itemgetter(0),
    )
    people = (
        real_participants(study).order_by("pk").values_list("pk", "public_id", "assignment__arm__slug", "enrolled_at")
    )
    pending = next(reports, None)
    for pk, public_id, arm, enrolled_at in people.iterator(chunk_size=CHUNK):
        reported: dict[tuple[dt.date, str], tuple[int, int, int]] = {}
        while pending is not None and pending[0] <= pk:
            if pending[0] == pk:
                reported = {(day, platform): (minutes, views, engagements)
                            for _, day, platform, minutes, views, engagements in pending[1]}  # fmt: skip
            pending = next(reports, None)
        installed_on = enrolled_at.astimezone(zone).date() if enrolled_at else None
        span = (
            installed_days(installed_on, followed[pk], last_day)
            if installed_on is not None and pk in followed
            else None
        )
        for day in panel_days(span, (day for day, _ in reported)):
            since = (day - installed_on).days if installed_on is not None else None
            for platform in PLATFORMS:
                measures = reported.get((day, platform))
                if measures is None and span is None:
                    continue  # not followed by S1: the days and platforms with reports only
                yield (public_id, arm or "", platform, day, since, *(measures or (0, 0, 0)))


def _payment_columns(study: Study, options: ExportOptions) -> list[Column]:
    return [
        Column("participant", "string", "Pseudonymous id."),
        Column("kind", "string", "survey, lottery or adjustment."),
        Column("reason", "string", "What the payment is for, as the participant sees it."),
        Column("amount", "decimal", "Amount."),
        Column("currency", "string", "ISO 4217 currency."),
        Column("method", "string", "Payout method."),
        Column("status", "string", "owed, approved, paid, failed or cancelled."),
        Column("created_at", "timestamp", "Credited."),
        Column("paid_at", "timestamp", "Paid out."),
    ]


def _payment_rows(study: Study, options: ExportOptions) -> Iterator[Sequence[Any]]:
    rows = (
        Payment.objects.filter(participant__in=real_participants(study))
        .order_by("pk")
        .values_list(
            "participant__public_id",
            "kind",
            "reason",
            "amount",
            "currency",
            "method",
            "status",
            "created_at",
            "paid_at",
        )
    )
    for row in rows.iterator(chunk_size=CHUNK):
        yield (*row[:3], decimal.Decimal(row[3]), *row[4:])


# Registered by ``ParticipantsConfig.ready()``, before the other apps' datasets.
PARTICIPANT_DATASETS = (
    Dataset(
        "participants",
        "Participants",
        "One row per person who reached the study (test participants left out).",
        _participant_columns,
        _participant_rows,
    ),
    Dataset("assignments", "Assignments", "One row per randomized participant.", _assignment_columns, _assignment_rows),
    Dataset(
        "daily_panel",
        "Daily behaviour panel",
        "S1's panel (surveys.effects.daily_panel): one row per participant, platform and study day. For a "
        "participant S1 follows (included and assigned), every day from installation to the day before leaving, or "
        "to the last rolled-up day, on all three platforms, 0 where the extension reported nothing (as the paper "
        "counts it); for anyone else, the days and platforms with events only.",
        _panel_columns,
        _panel_rows,
    ),
    Dataset("payments", "Payments", "The payments ledger, one row per credit.", _payment_columns, _payment_rows),
)


# --- requesting an export ------------------------------------------------------------------------


class ExportRefused(Exception):
    """The role of whoever asked does not allow this export (the refusal is audited)."""


def may_export(user: Any, *, identifiable: bool = False) -> bool:
    """The one export rule: ``EXPORT_DATA`` for any export, and ``EXPORT_IDENTIFIABLE`` as well for an
    identifiable one."""
    allowed = user.has_perm(f"participants.{EXPORT_DATA}")
    return allowed and (not identifiable or user.has_perm(f"participants.{EXPORT_IDENTIFIABLE}"))


def request_export(*, study: Study, by: Any, names: Sequence[str], fmt: str, identifiable: bool = False) -> Export:
    """Queue an export (built by a Celery task after commit) and audit who asked for what; a role without
    the right is refused, and that is audited too."""
    detail = {"datasets": list(names), "format": fmt, "identifiable": identifiable}
    if not may_export(by, identifiable=identifiable):
        record_audit(action="export.refused", obj=study, actor=by, detail=detail)
        raise ExportRefused
    from participants.tasks import build_export as build_task  # the task module imports this one

    with transaction.atomic():
        export = Export.objects.create(
            study=study, requested_by=by, datasets=list(names), format=fmt, identifiable=identifiable
        )
        record_audit(action="export.requested", obj=study, actor=by, detail={"export": export.pk, **detail})
        queue = settings.PRC_EXPORT_QUEUE or None  # None: Celery's default queue
        transaction.on_commit(lambda: build_task.apply_async(args=[export.pk], queue=queue))
    return export


def record_download(export: Export, by: Any, *, refused: bool = False) -> None:
    record_audit(
        action="export.download_refused" if refused else "export.downloaded",
        obj=export.study,
        actor=by,
        detail={"export": export.pk, "datasets": export.datasets, "identifiable": export.identifiable},
    )
