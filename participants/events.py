"""Behaviour events from the extension: ingest, erasure, and the daily rollups that pages and exports read.

A batch is checked event by event (``behaviour.check_events``) and stored with one statement and one round
trip (``INGEST_SQL``): the batch row, whose unique key makes a repeat a no-op, and the valid events, sent as
one JSON document and unpacked by ``jsonb_to_recordset``, into a log range-partitioned by month like the
slate log. The same statement takes a share lock on the participant row and re-checks the withdrawal, so a
batch can never land after a withdrawal has erased the participant's events.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import psycopg
from django.db import connection, transaction
from django.utils import timezone

from participants.behaviour import (
    VERSION_LENGTH,
    Batch,
    EventContext,
    EventSignal,
    Gap,
    GapRule,
    check_events,
    daily_behaviour,
    find_gaps,
)
from participants.models import (
    BehaviourEvent,
    DailyBehaviour,
    DailyEventCount,
    EventBatch,
    ExtensionInstall,
    Participant,
    Study,
)

DEFAULT_GAP_RULE = GapRule()

INGEST_SQL = """
WITH p AS (
    SELECT id, study_id FROM participants_participant WHERE id = %(participant)s AND withdrawn_at IS NULL FOR SHARE
), b AS (
    INSERT INTO participants_eventbatch
        (participant_id, batch_key, received_at, extension_version, n_events, n_accepted, rejected)
    SELECT p.id, %(batch_key)s, now(), %(version)s, %(n_events)s, %(n_accepted)s, %(rejected)s::jsonb FROM p
    ON CONFLICT (participant_id, batch_key) DO NOTHING
    RETURNING id
), e AS (
    INSERT INTO participants_behaviourevent (occurred_at, received_at, participant_id, study_id, batch_id, platform,
                                             kind, action, item_id, active_page, user_active, extension_version)
    SELECT r.occurred_at, now(), p.id, p.study_id, b.id, r.platform, r.kind, r.action, r.item_id, r.active_page,
           r.user_active, %(version)s
    FROM p, b, jsonb_to_recordset(%(rows)s::jsonb) AS r(occurred_at timestamptz, platform text, kind text,
         action text, item_id text, active_page boolean, user_active boolean)
)
SELECT (SELECT count(*) FROM p), (SELECT id FROM b)
"""


# Who sends a batch, for one token hash: the install's participant (withdrawn or not) and its version.
SENDER_SQL = """
SELECT p.id, p.public_id, p.created_at, p.withdrawn_at IS NOT NULL AS withdrawn, i.extension_version
FROM participants_extensioninstall i JOIN participants_participant p ON p.id = i.participant_id
WHERE i.token_hash = %(token_hash)s AND i.uninstalled_at IS NULL
"""
# What a batch key's first batch stored: a repeat is answered with it.
FIRST_ANSWER_SQL = """
SELECT n_accepted, rejected::text FROM participants_eventbatch
WHERE participant_id = %(participant)s AND batch_key = %(batch_key)s
"""


WITHDRAWN = ("withdrawn", "You have left the study: no data is collected.")  # the 403's code and message


class Withdrawn(Exception):
    """The participant has withdrawn: no event of theirs is stored any more."""


@dataclass(frozen=True)
class Sender:
    """The participant behind a batch's token, as the checks and the insert need them."""

    participant_id: int
    public_id: str
    joined_at: dt.datetime  # first contact with the study: no event happened before it
    withdrawn: bool
    install_version: str

    @classmethod
    def of(cls, participant: Participant, install: ExtensionInstall) -> Sender:
        return cls(participant.pk, participant.public_id, participant.created_at, participant.is_withdrawn,
                   install.extension_version)  # fmt: skip


@dataclass(frozen=True)
class IngestResult:
    batch_key: str
    accepted: int
    rejected: list[dict[str, Any]]
    repeat: bool

    def as_dict(self) -> dict[str, Any]:
        return {"batch_key": self.batch_key, "accepted": self.accepted, "rejected": self.rejected,
                "repeat": self.repeat}  # fmt: skip


@dataclass(frozen=True)
class PreparedBatch:
    """A checked batch: ``INGEST_SQL``'s parameters and the answer if it is stored for the first time."""

    params: dict[str, Any]
    fresh: IngestResult


def prepare_batch(sender: Sender, batch: Batch, now: dt.datetime) -> PreparedBatch:
    """Check each event of the batch (``behaviour.check_events``) and build the insert's parameters."""
    if sender.withdrawn:
        raise Withdrawn
    rows, rejections = check_events(batch.events, EventContext(sender.public_id, sender.joined_at, now))
    rejected = [rejection.as_dict() for rejection in rejections]
    params: dict[str, Any] = {
        "participant": sender.participant_id,
        "batch_key": batch.batch_key,
        "version": (batch.extension_version or sender.install_version)[:VERSION_LENGTH],
        "n_events": len(batch.events),
        "n_accepted": len(rows),
        "rejected": orjson.dumps(rejected).decode(),
        "rows": orjson.dumps(rows).decode(),
    }
    return PreparedBatch(params, IngestResult(batch.batch_key, len(rows), rejected, repeat=False))


def _outcome(prepared: PreparedBatch, inserted: tuple[int, int | None]) -> IngestResult | None:
    """The answer once ``INGEST_SQL`` ran: the fresh one, or None when the batch key was seen before."""
    still_in, batch_id = inserted
    if not still_in:
        raise Withdrawn
    return prepared.fresh if batch_id is not None else None


def _repeat(batch_key: str, first: tuple[int, str]) -> IngestResult:
    """The first answer, from ``FIRST_ANSWER_SQL``'s row (JSON as text: Django's cursor and psycopg's agree)."""
    return IngestResult(batch_key, first[0], orjson.loads(first[1]), repeat=True)


def ingest_events(*, sender: Sender, batch: Batch, now: dt.datetime | None = None) -> IngestResult:
    """Store a batch's valid events and say why the others were refused; a repeated ``batch_key`` stores
    nothing and is answered with what the first one stored. Raises ``Withdrawn`` for a withdrawn participant."""
    prepared = prepare_batch(sender, batch, now or timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(INGEST_SQL, prepared.params)
        result = _outcome(prepared, cursor.fetchone())
        if result is not None:
            return result
        cursor.execute(FIRST_ANSWER_SQL, prepared.params)
        return _repeat(batch.batch_key, cursor.fetchone())


async def aingest_events(
    conn: psycopg.AsyncConnection[Any], *, sender: Sender, batch: Batch, now: dt.datetime
) -> IngestResult:
    """``ingest_events`` on an async psycopg connection (autocommit): the same statements, the same answers."""
    prepared = prepare_batch(sender, batch, now)
    async with conn.cursor() as cursor:
        await cursor.execute(INGEST_SQL, prepared.params)
        result = _outcome(prepared, await cursor.fetchone())  # type: ignore[arg-type]
        if result is not None:
            return result
        await cursor.execute(FIRST_ANSWER_SQL, prepared.params)
        return _repeat(batch.batch_key, await cursor.fetchone())  # type: ignore[arg-type]


async def asender_for_token_hash(conn: psycopg.AsyncConnection[Any], token_hash: str) -> Sender | None:
    """The sender behind a token hash (``SENDER_SQL``); None for an unknown or uninstalled token."""
    async with conn.cursor() as cursor:
        await cursor.execute(SENDER_SQL, {"token_hash": token_hash})
        row = await cursor.fetchone()
    return None if row is None else Sender(*row)


def erase_events(participant: Participant) -> dict[str, int]:
    """Delete every behaviour event, batch and daily row of a participant (withdrawal under delete terms)."""
    events, _ = BehaviourEvent.objects.filter(participant_id=participant.pk).delete()
    batches, _ = EventBatch.objects.filter(participant=participant).delete()
    daily, _ = DailyBehaviour.objects.filter(participant=participant).delete()
    return {"behaviour_events": events, "event_batches": batches, "daily_behaviour": daily}


def ensure_partitions(months_ahead: int = 3) -> int:
    """Create the event log's monthly partitions ahead of time; returns how many were new."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT participants_ensure_event_partitions(%s)", [months_ahead])
        row = cursor.fetchone()
    return int(row[0]) if row else 0


# --- daily rollups -------------------------------------------------------------------------------


def local_day_bounds(day: dt.date, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants where a local calendar day starts and ends (23 or 25 hours across DST changes)."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def _signals(study: Study, start: dt.datetime, end: dt.datetime) -> Iterator[tuple[int, EventSignal]]:
    events = (
        BehaviourEvent.objects.filter(study_id=study.pk, occurred_at__gte=start, occurred_at__lt=end)
        .order_by("participant_id", "occurred_at")
        .values_list("participant_id", "occurred_at", "platform", "kind", "active_page", "user_active")
    )
    for participant_id, at, platform, kind, active_page, user_active in events.iterator(chunk_size=10_000):
        yield participant_id, EventSignal(at, platform, kind, active_page, user_active)


def rollup_behaviour_day(*, study: Study, day: dt.date) -> int:
    """Recompute one local day of a study: ``DailyBehaviour`` per participant and platform, and
    ``DailyEventCount`` per platform, kind and extension version. Safe to run twice; returns the rows written."""
    tz = ZoneInfo(study.timezone)
    start, end = local_day_bounds(day, tz)
    now = timezone.now()
    daily = []
    for participant_id, signals in itertools.groupby(_signals(study, start, end), key=lambda pair: pair[0]):
        for (on_day, platform), counts in daily_behaviour((signal for _, signal in signals), tz).items():
            daily.append(
                DailyBehaviour(
                    participant_id=participant_id,
                    study_id=study.pk,
                    day=on_day,
                    platform=platform,
                    active_minutes=counts.active_minutes,
                    views=counts.views,
                    engagements=counts.engagements,
                    computed_at=now,
                )
            )
    with transaction.atomic():
        DailyBehaviour.objects.filter(study_id=study.pk, day=day).delete()
        DailyBehaviour.objects.bulk_create(daily, batch_size=5000)
        DailyEventCount.objects.filter(study=study, day=day).delete()
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO participants_dailyeventcount
                    (study_id, day, platform, kind, extension_version, events, participants)
                SELECT %(study)s, %(day)s, platform, kind, extension_version, count(*), count(DISTINCT participant_id)
                FROM participants_behaviourevent
                WHERE study_id = %(study)s AND occurred_at >= %(start)s AND occurred_at < %(end)s
                GROUP BY platform, kind, extension_version
                """,
                {"study": study.pk, "day": day, "start": start, "end": end},
            )
            counted = cursor.rowcount
    return len(daily) + counted


def rollup_behaviour_recent_days(now: dt.datetime | None = None) -> int:
    """Yesterday and today, in each study's time zone, for every study that is not a draft."""
    now = now or timezone.now()
    written = 0
    for study in Study.objects.exclude(status=Study.Status.DRAFT):
        today = now.astimezone(ZoneInfo(study.timezone)).date()
        for day in (today - dt.timedelta(days=1), today):
            written += rollup_behaviour_day(study=study, day=day)
    return written


# --- the gap page --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamTotal:
    platform: str
    kind: str
    events: int
    last_day: int  # events on the period's last day


def event_streams(
    study: Study, start: dt.date, end: dt.date, rule: GapRule = DEFAULT_GAP_RULE
) -> tuple[dict[tuple[str, ...], dict[dt.date, int]], list[dt.date]]:
    """Daily event counts per stream, from ``DailyEventCount``: ("platform", name, kind) and ("version", name,
    kind). The days include ``rule.window_days`` before ``start`` so that the first days can be judged."""
    first = start - dt.timedelta(days=rule.window_days)
    days = [first + dt.timedelta(days=i) for i in range((end - first).days + 1)]
    streams: dict[tuple[str, ...], dict[dt.date, int]] = defaultdict(lambda: defaultdict(int))
    rows = DailyEventCount.objects.filter(study=study, day__gte=first, day__lte=end).values_list(
        "day", "platform", "kind", "extension_version", "events"
    )
    for day, platform, kind, version, count in rows:
        streams[("platform", platform, kind)][day] += count
        streams[("version", version or "unknown", kind)][day] += count
    return {stream: dict(counts) for stream, counts in streams.items()}, days


def gap_report(study: Study, start: dt.date, end: dt.date) -> tuple[list[Gap], list[StreamTotal]]:
    """The gaps that overlap the period, and each platform's events by kind over it."""
    streams, days = event_streams(study, start, end)
    gaps = [gap for gap in find_gaps(streams, days, DEFAULT_GAP_RULE) if gap.last >= start]
    totals = [
        StreamTotal(platform, kind, sum(n for day, n in counts.items() if day >= start), counts.get(end, 0))
        for (dimension, platform, kind), counts in sorted(streams.items())
        if dimension == "platform"
    ]
    return gaps, totals
