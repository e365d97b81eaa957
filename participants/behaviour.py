"""The rules of behaviour data, as pure functions: what a valid event is, what an active minute is, and
when a stream of events has a gap. No ORM here: ``participants.events`` stores and rolls up, these decide.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from participants.paper import PLATFORMS

VIEW = "view"
ENGAGEMENT = "engagement"
ACTIVITY = "activity"
EVENT_KINDS = (VIEW, ENGAGEMENT, ACTIVITY)
# What the extension can see a participant do to an item (Facebook reactions, Reddit votes, X reposts...).
ENGAGEMENT_ACTIONS = (
    "like", "reaction", "share", "repost", "comment", "reply", "upvote", "downvote", "save", "click", "follow",
)  # fmt: skip
ITEM_ID_LENGTH = 255
MAX_BATCH = 1000  # events in one batch
BATCH_KEY_LENGTH = (8, 100)  # shortest and longest batch key
VERSION_LENGTH = 50
# A device clock may be a little off: an event further in the future, or this much before the participant
# joined, did not happen then.
CLOCK_SKEW = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class Rejection:
    index: int
    code: str
    message: str
    field: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "code": self.code, "message": self.message, "field": self.field}


@dataclass(frozen=True)
class EventContext:
    """What an event is checked against: whose token sent it and when it could have happened."""

    public_id: str
    not_before: dt.datetime  # the participant's first contact with the study
    now: dt.datetime


def _timestamp(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        at = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


@dataclass(frozen=True)
class Batch:
    """A batch whose envelope is valid; its events are still to be checked one by one."""

    batch_key: str
    extension_version: str
    events: list[Any]


@dataclass(frozen=True)
class BatchError:
    """Why a whole batch is refused (HTTP 400, nothing stored)."""

    code: str
    message: str
    field: str | None


def check_batch(body: Any) -> Batch | BatchError:
    """The batch envelope ``{"batch_key", "extension_version"?, "events": [...]}``: the batch, or why it is refused.

    The only statement of these rules: the Django view and the ASGI app (``participants.events_asgi``) both call
    it. The events themselves are taken as they are (a bad one is refused alone, by ``check_event``).
    """
    if not isinstance(body, dict):
        return BatchError("invalid", "The batch is a JSON object.", None)
    key = body.get("batch_key")
    if key is None:
        return BatchError("required", "This field is required.", "batch_key")
    shortest, longest = BATCH_KEY_LENGTH
    if not isinstance(key, str) or not shortest <= len(key.strip()) <= longest or "\x00" in key:
        return BatchError("invalid", f"'batch_key' is a string of {shortest} to {longest} characters.", "batch_key")
    version = body.get("extension_version", "")
    if not isinstance(version, str) or len(version) > VERSION_LENGTH or "\x00" in version:
        return BatchError("invalid", f"'extension_version' is a string of at most {VERSION_LENGTH} characters.",
                          "extension_version")  # fmt: skip
    events = body.get("events")
    if events is None:
        return BatchError("required", "This field is required.", "events")
    if not isinstance(events, list) or not 1 <= len(events) <= MAX_BATCH:
        return BatchError("invalid", f"'events' is a list of 1 to {MAX_BATCH} events.", "events")
    return Batch(key.strip(), version.strip(), events)


def check_event(raw: Any, index: int, context: EventContext) -> dict[str, Any] | Rejection:
    """One event as sent by the extension: the row to store, or why it is refused.

    An event is ``{"kind", "platform", "at", ...}``: ``view`` and ``engagement`` name an ``item_id``
    (an engagement also its ``action``); ``activity`` is the per-minute ping with ``active_page``
    (the platform is the focused page) and ``user_active`` (mouse or keyboard in that minute).
    ``user_id``, when sent, must be the token's participant.
    """
    if not isinstance(raw, dict):
        return Rejection(index, "invalid", "An event is a JSON object.")
    kind = raw.get("kind")
    if kind not in EVENT_KINDS:
        return Rejection(index, "unknown_type", f"Unknown event kind {str(kind)[:40]!r}.", "kind")
    user_id = raw.get("user_id")
    if user_id is not None and user_id != context.public_id:
        return Rejection(index, "unknown_participant", "This event names another participant.", "user_id")
    platform = raw.get("platform")
    if platform not in PLATFORMS:
        return Rejection(index, "invalid", f"Unknown platform {str(platform)[:40]!r}.", "platform")
    at = _timestamp(raw.get("at"))
    if at is None:
        return Rejection(index, "invalid_timestamp", "'at' must be an ISO 8601 time with a time zone.", "at")
    if at > context.now + CLOCK_SKEW or at < context.not_before - CLOCK_SKEW:
        return Rejection(index, "impossible_timestamp", "'at' is before the participant joined or in the future.", "at")
    row: dict[str, Any] = {"occurred_at": at.isoformat(), "platform": platform, "kind": kind, "action": "",
                           "item_id": "", "active_page": None, "user_active": None}  # fmt: skip
    if kind == ACTIVITY:
        active_page, user_active = raw.get("active_page"), raw.get("user_active", False)
        if not isinstance(active_page, bool) or not isinstance(user_active, bool):
            return Rejection(index, "invalid", "An activity ping has true/false 'active_page' and 'user_active'.")
        row["active_page"], row["user_active"] = active_page, user_active
        return row
    item_id = raw.get("item_id")
    if not isinstance(item_id, str) or not item_id or len(item_id) > ITEM_ID_LENGTH or "\x00" in item_id:
        return Rejection(index, "invalid", f"'item_id' is a string of 1 to {ITEM_ID_LENGTH} characters.", "item_id")
    row["item_id"] = item_id
    if kind == ENGAGEMENT:
        action = raw.get("action")
        if action not in ENGAGEMENT_ACTIONS:
            return Rejection(index, "unknown_type", f"Unknown engagement {str(action)[:40]!r}.", "action")
        row["action"] = action
    return row


def check_events(raw_events: Sequence[Any], context: EventContext) -> tuple[list[dict[str, Any]], list[Rejection]]:
    """Split a batch into the rows to store and the rejections, in the batch's order."""
    rows: list[dict[str, Any]] = []
    rejected: list[Rejection] = []
    for index, raw in enumerate(raw_events):
        checked = check_event(raw, index, context)
        (rejected if isinstance(checked, Rejection) else rows).append(checked)  # type: ignore[arg-type]
    return rows, rejected


# --- active time ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventSignal:
    """The part of a stored event that active time and the daily counts read."""

    at: dt.datetime
    platform: str
    kind: str
    active_page: bool | None = None
    user_active: bool | None = None


@dataclass
class DailyCounts:
    active_minutes: int = 0
    views: int = 0
    engagements: int = 0


@dataclass
class _Minute:
    on_page: bool = False
    activity: bool = False


def daily_behaviour(events: Iterable[EventSignal], tz: ZoneInfo) -> dict[tuple[dt.date, str], DailyCounts]:
    """Daily active minutes, views and engagements per (local day, platform), the paper's way (section 1.5,
    after its reference 47): the extension records every minute whether a platform is the active page, and
    every item newly displayed; combining the two gives active time.

    1. Each event falls in its minute of local time (``tz``, the study's time zone).
    2. A minute is *on the page* for a platform when an activity ping for it in that minute says the
       platform was the active page.
    3. A minute *has activity* for a platform when a ping in it reports mouse or keyboard use, or an item
       of that platform was viewed or engaged with in it.
    4. A minute is active when it is both; each counts once, however many events fell in it, on the day
       it falls on.
    5. Views and engagements are counted per day and platform as they are.
    """
    minutes: dict[tuple[dt.datetime, str], _Minute] = defaultdict(_Minute)
    days: dict[tuple[dt.date, str], DailyCounts] = defaultdict(DailyCounts)
    for event in events:
        local = event.at.astimezone(tz)
        minute = minutes[(local.replace(second=0, microsecond=0), event.platform)]
        day = days[(local.date(), event.platform)]
        if event.kind == ACTIVITY:
            minute.on_page |= bool(event.active_page)
            minute.activity |= bool(event.user_active)
        else:
            minute.activity = True
            if event.kind == VIEW:
                day.views += 1
            else:
                day.engagements += 1
    for (start, platform), state in minutes.items():
        if state.on_page and state.activity:
            days[(start.date(), platform)].active_minutes += 1
    return dict(days)


def installed_days(installed_on: dt.date, left_on: dt.date | None, last_day: dt.date) -> tuple[dt.date, dt.date] | None:
    """The first and last study day of a participant's daily panel (S1), or None when there is none yet.

    A participant is followed from the local day the extension was installed to the day before they left
    (``participants.balance.left_on``: withdrawal, or uninstalling their last copy), or to the last rolled-up
    day. Every one of those days is a day of the panel, also one on which the extension reported nothing: the
    extension records every minute whether a platform is the active page, so an installed day without a
    recorded minute is a day of 0 active minutes, 0 views and 0 engagements on each platform (as in the paper,
    whose panel has the same number of participant-days for every platform, Tables S5 and S6). A treatment that
    drives someone off a platform altogether thus counts as the drop it is instead of leaving the panel.
    """
    last = min(last_day, left_on - dt.timedelta(days=1)) if left_on is not None else last_day
    return (installed_on, last) if last >= installed_on else None


def panel_days(span: tuple[dt.date, dt.date] | None, reported: Iterable[dt.date]) -> list[dt.date]:
    """The days of one participant's daily panel, in order: every installed day of ``span`` (``installed_days``)
    and any other day the extension reported something for them; on each, a platform without a report is 0."""
    days = set(reported)
    if span is not None:
        first, last = span
        days.update(first + dt.timedelta(days=n) for n in range((last - first).days + 1))
    return sorted(days)


# --- gaps ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gap:
    """A stream (e.g. facebook views, or version 1.4.0's engagements) whose daily events fell from ``first``
    to ``last`` (inclusive; ``last`` is the latest day judged while the gap is still open)."""

    stream: tuple[str, ...]
    first: dt.date
    last: dt.date
    usual: float  # the median daily count in the days before the gap
    lowest: int  # the fewest events of a day in the gap

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


@dataclass(frozen=True)
class GapRule:
    window_days: int = 7  # the days a day is compared with
    min_usual: float = 20  # streams smaller than this are noise, not a signal
    max_ratio: float = 0.5  # a day with at most this share of the usual count is in a gap
    min_history: int = 3  # days of a started stream needed before a drop means anything


def find_gaps(
    daily: Mapping[tuple[str, ...], Mapping[dt.date, int]], days: Sequence[dt.date], rule: GapRule = GapRule()
) -> list[Gap]:
    """Where each stream's events suddenly dropped, over ``days`` (consecutive, in order; a missing day has
    no events).

    1. A stream starts on its first day with events; days before that are not judged.
    2. A day opens a gap when its count is at most ``max_ratio`` of the *usual* count, the median of the
       ``window_days`` days before it (at least ``min_history`` of them since the start), and that usual
       count is at least ``min_usual``.
    3. The gap stays open while each next day is at most ``max_ratio`` of the usual count at its opening
       (so a month of lost Facebook views is one gap of a month, not a week that then looks normal).
    4. The first day above that closes it; the stream is judged afresh from there.
    """
    gaps = [gap for stream, counts in daily.items() for gap in _stream_gaps(stream, counts, days, rule)]
    return sorted(gaps, key=lambda gap: (gap.first, gap.stream))


def _stream_gaps(
    stream: tuple[str, ...], counts: Mapping[dt.date, int], days: Sequence[dt.date], rule: GapRule
) -> list[Gap]:
    if not counts:
        return []
    started = min(counts)
    gaps: list[Gap] = []
    open_gap: Gap | None = None
    for i, day in enumerate(days):
        count = counts.get(day, 0)
        if open_gap is not None:
            if count <= rule.max_ratio * open_gap.usual:
                open_gap = Gap(stream, open_gap.first, day, open_gap.usual, min(open_gap.lowest, count))
                continue
            gaps.append(open_gap)
            open_gap = None
        before = [counts.get(d, 0) for d in days[max(0, i - rule.window_days) : i] if d >= started]
        if len(before) < rule.min_history:
            continue
        usual = statistics.median(before)
        if usual >= rule.min_usual and count <= rule.max_ratio * usual:
            open_gap = Gap(stream, day, day, usual, count)
    return gaps + ([open_gap] if open_gap is not None else [])
