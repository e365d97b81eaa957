"""The pure rules of behaviour data: active minutes on hand-made minute sequences, and gap flags."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from participants.behaviour import (
    ACTIVITY,
    ENGAGEMENT,
    VIEW,
    EventSignal,
    Gap,
    GapRule,
    daily_behaviour,
    find_gaps,
    installed_days,
    panel_days,
)

UTC = ZoneInfo("UTC")
NEW_YORK = ZoneInfo("America/New_York")
NOON = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


def ping(
    minute: int, *, platform: str = "facebook", page: bool = True, active: bool = False, second: int = 0
) -> EventSignal:
    return EventSignal(NOON + dt.timedelta(minutes=minute, seconds=second), platform, ACTIVITY, page, active)


def seen(minute: int, *, platform: str = "facebook", kind: str = VIEW, second: int = 30) -> EventSignal:
    return EventSignal(NOON + dt.timedelta(minutes=minute, seconds=second), platform, kind)


def minutes(events: list[EventSignal], tz: ZoneInfo = UTC) -> dict[tuple[dt.date, str], int]:
    return {key: counts.active_minutes for key, counts in daily_behaviour(events, tz).items()}


def test_a_minute_counts_when_the_platform_is_the_active_page_and_there_was_input() -> None:
    assert minutes([ping(0, active=True), ping(1, active=True), ping(2, active=True)]) == {(NOON.date(), "facebook"): 3}


def test_a_minute_on_the_page_without_input_or_views_does_not_count() -> None:
    assert minutes([ping(0, active=False), ping(1, active=False)]) == {(NOON.date(), "facebook"): 0}


def test_a_view_in_a_minute_on_the_page_makes_it_active() -> None:
    assert minutes([ping(0), seen(0), ping(1), seen(2)]) == {(NOON.date(), "facebook"): 1}


def test_an_engagement_also_makes_a_minute_on_the_page_active() -> None:
    assert minutes([ping(5), seen(5, kind=ENGAGEMENT)]) == {(NOON.date(), "facebook"): 1}


def test_input_while_the_platform_is_in_a_background_tab_does_not_count() -> None:
    assert minutes([ping(0, page=False, active=True), seen(0)]) == {(NOON.date(), "facebook"): 0}


def test_several_pings_and_views_in_one_minute_count_once() -> None:
    events = [ping(3, active=True), ping(3, second=20), ping(3, active=True, second=40), seen(3), seen(3, second=50)]
    assert minutes(events) == {(NOON.date(), "facebook"): 1}


def test_each_platform_counts_its_own_minutes() -> None:
    events = [ping(0, active=True), ping(0, platform="reddit"), seen(0, platform="twitter")]
    assert minutes(events) == {(NOON.date(), "facebook"): 1, (NOON.date(), "reddit"): 0, (NOON.date(), "twitter"): 0}


def test_minutes_fall_on_the_local_day_of_the_study() -> None:
    # 04:59 and 05:00 UTC on 3 March are 23:59 on 2 March and 00:00 on 3 March in New York.
    late = dt.datetime(2026, 3, 3, 4, 59, 10, tzinfo=dt.UTC)
    events = [
        EventSignal(late, "reddit", ACTIVITY, True, True),
        EventSignal(late + dt.timedelta(minutes=1), "reddit", ACTIVITY, True, True),
    ]
    assert minutes(events, NEW_YORK) == {(dt.date(2026, 3, 2), "reddit"): 1, (dt.date(2026, 3, 3), "reddit"): 1}


def test_views_and_engagements_are_counted_per_day_and_platform() -> None:
    counts = daily_behaviour([seen(0), seen(1), seen(1, kind=ENGAGEMENT), seen(2, platform="reddit")], UTC)
    facebook, reddit = counts[(NOON.date(), "facebook")], counts[(NOON.date(), "reddit")]
    assert (facebook.views, facebook.engagements, facebook.active_minutes) == (2, 1, 0)
    assert (reddit.views, reddit.engagements) == (1, 0)


@given(st.lists(st.tuples(st.integers(0, 600), st.booleans(), st.booleans(), st.sampled_from([ACTIVITY, VIEW]))))
def test_active_minutes_never_exceed_the_minutes_on_the_page(raw: list[tuple[int, bool, bool, str]]) -> None:
    events = [ping(m, page=page, active=active) if kind == ACTIVITY else seen(m) for m, page, active, kind in raw]
    on_page = {m for m, page, _, kind in raw if kind == ACTIVITY and page}
    total = sum(counts.active_minutes for counts in daily_behaviour(events, UTC).values())
    assert total <= len(on_page)
    assert total == len({m for m in on_page if any(r[0] == m and (r[3] == VIEW or r[2]) for r in raw)})


# --- gaps ----------------------------------------------------------------------------------------

DAYS = [dt.date(2026, 8, 1) + dt.timedelta(days=i) for i in range(20)]


def series(values: list[int]) -> dict[dt.date, int]:
    return {day: value for day, value in zip(DAYS, values, strict=False) if value}


def test_the_daily_panel_covers_every_installed_day_until_the_day_before_leaving_or_the_last_rolled_up_day() -> None:
    installed, last = dt.date(2024, 9, 2), dt.date(2024, 9, 30)
    assert installed_days(installed, None, last) == (installed, last)
    assert installed_days(installed, dt.date(2024, 9, 10), last) == (installed, dt.date(2024, 9, 9))
    assert installed_days(installed, dt.date(2024, 10, 5), last) == (installed, last)  # left after the last rollup
    assert installed_days(installed, installed + dt.timedelta(days=1), last) == (installed, installed)
    assert installed_days(installed, installed, last) is None  # left the day they installed
    assert installed_days(dt.date(2024, 10, 1), None, last) is None  # installed after the last rolled-up day


@given(
    first=st.dates(dt.date(2024, 1, 1), dt.date(2024, 12, 31)),
    length=st.integers(0, 60),
    reported=st.lists(st.dates(dt.date(2023, 12, 1), dt.date(2025, 1, 31)), max_size=20),
    followed=st.booleans(),
)
def test_a_panel_has_every_installed_day_once_and_every_reported_day_in_order(
    first: dt.date, length: int, reported: list[dt.date], followed: bool
) -> None:
    span = (first, first + dt.timedelta(days=length)) if followed else None
    days = panel_days(span, reported)
    assert days == sorted(set(days))
    assert set(reported) <= set(days)
    installed = {first + dt.timedelta(days=n) for n in range(length + 1)} if followed else set()
    assert set(days) == installed | set(reported)


def test_a_stream_that_suddenly_drops_is_one_gap_for_as_long_as_it_lasts() -> None:
    facebook_views = series([100, 110, 90, 105, 95, 100, 0, 0, 3, 0, 0, 0, 0, 0, 0, 100, 98])
    gaps = find_gaps({("facebook", "view"): facebook_views}, DAYS[:17])
    assert gaps == [Gap(("facebook", "view"), DAYS[6], DAYS[14], usual=100, lowest=0)]
    assert gaps[0].days == 9


def test_a_gap_still_open_on_the_last_day_is_reported_up_to_it() -> None:
    gaps = find_gaps({("2.1.0", "engagement"): series([50, 50, 50, 50, 20])}, DAYS[:5])
    assert [(gap.first, gap.last, gap.lowest) for gap in gaps] == [(DAYS[4], DAYS[4], 20)]


def test_ordinary_variation_and_small_streams_are_not_gaps() -> None:
    daily = {
        ("reddit", "view"): series([100, 80, 120, 70, 110, 60, 90]),  # never at half the usual
        ("twitter", "view"): series([10, 12, 9, 11, 0, 0, 0]),  # too small to mean anything
    }
    assert find_gaps(daily, DAYS[:7]) == []


def test_a_stream_is_not_judged_before_it_started_or_without_enough_history() -> None:
    new_version = series([0, 0, 0, 0, 200, 0])  # released on day 5, gone on day 6: one day of history
    assert find_gaps({("2.2.0", "view"): new_version}, DAYS[:6]) == []
    assert find_gaps({("2.2.0", "view"): new_version}, DAYS[:6], GapRule(min_history=1))[0].first == DAYS[5]


def test_gaps_are_listed_by_day_then_stream() -> None:
    daily = {("reddit", "view"): series([40, 40, 40, 40, 0]), ("facebook", "view"): series([40, 40, 40, 0, 0])}
    assert [(gap.stream[0], gap.first) for gap in find_gaps(daily, DAYS[:5])] == [
        ("facebook", DAYS[3]), ("reddit", DAYS[4]),
    ]  # fmt: skip
