"""Daily rollups of the slate log: exact numbers on known slates, idempotence, the task, beat and the backfill."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from participants.models import Study
from rankers import tasks
from rankers.models import Slate
from rankers.models_rollups import DailyArmRollup
from rankers.rollups import day_bounds, rollup_day, rollup_recent_days, rollup_study_day
from tests.factories import StudyFactory

pytestmark = pytest.mark.django_db

NEW_YORK = ZoneInfo("America/New_York")
DAY = dt.date(2024, 10, 1)


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    """A moment on ``day`` in the study's (New York) time zone."""
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=NEW_YORK)


def slate(study: Study, served_at: dt.datetime, **fields: Any) -> Slate:
    values: dict[str, Any] = {
        "participant_id": "p_0123456789abcdef",
        "arm": "uprank_bridging",
        "effective_arm": "uprank_bridging",
        "ranker_key": "uprank_bridging",
        "platform": "twitter",
        "content_type": "post",
        "original_ids": ["a", "b", "c"],
        "returned_ids": ["c", "a", "b"],
        "served_ms": 501.0,
        "ranker_ms": 20.0,
        "intervention_on": True,
        "nrc": 0.4,
        "n_items": 3,
        "hold_ms": 500.0,
        "phase": "assigned",
        "n_scored": 3,
    }
    values.update(fields)
    return Slate.objects.create(study_id=study.id, served_at=served_at, **values)


def rollup_values(study: Study) -> list[dict[str, Any]]:
    return list(DailyArmRollup.objects.filter(study=study).order_by("day", "arm_slug", "platform").values())


def without_volatile(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in ("id", "computed_at")} for row in rows]


@pytest.fixture
def study() -> Study:
    return StudyFactory(timezone="America/New_York", status=Study.Status.RUNNING)


@pytest.fixture
def known_day(study: Study) -> Study:
    """Four bridging slates (one fell back on timeout) and two control slates on DAY, plus noise around them."""
    slate(study, at(DAY, 9), nrc=0.1, ranker_ms=10, served_ms=500)
    slate(study, at(DAY, 10), nrc=0.2, ranker_ms=20, served_ms=502)
    slate(study, at(DAY, 11), nrc=0.6, ranker_ms=30, served_ms=504, n_added=2, n_deleted=1, n_scored=1, capped=True)
    slate(
        study,
        at(DAY, 23, 59),
        nrc=None,
        ranker_ms=None,
        served_ms=510,
        intervention_on=False,
        fallback_reason="timeout",
        returned_ids=["a", "b", "c"],
        n_scored=None,  # timed out: nobody knows
    )
    for hour, phase, served in ((8, "baseline", 260.0), (12, "not_started", 560.5)):
        slate(study, at(DAY, hour), effective_arm="control", arm="add_news", ranker_key="control", nrc=0.0,
              n_scored=None, phase=phase, served_ms=served, hold_ms=served - 10)  # fmt: skip
    slate(study, at(DAY, 0) - dt.timedelta(seconds=1), nrc=0.9)  # the day before, in New York
    slate(study, at(DAY + dt.timedelta(days=1), 0), nrc=0.9)  # the day after
    slate(StudyFactory(), at(DAY, 12), nrc=0.9)  # another study
    return study


def test_a_day_is_rolled_up_per_effective_arm_with_exact_counts_means_and_percentiles(known_day: Study) -> None:
    assert rollup_study_day(study_id=known_day.id, day=DAY) == 2
    control, bridging = without_volatile(rollup_values(known_day))
    assert bridging == {
        "study_id": known_day.id,
        "day": DAY,
        "arm_slug": "uprank_bridging",
        "platform": "twitter",
        "content_type": "post",
        "slates": 4,
        "slates_intervened": 3,
        "nrc_slates": 3,
        "nrc_mean": pytest.approx(0.3),
        "added_total": 2,
        "added_mean": pytest.approx(0.5),
        "deleted_total": 1,
        "deleted_mean": pytest.approx(0.25),
        "fallbacks": {"timeout": 1},
        "ranker_p50_ms": pytest.approx(20.0),
        "ranker_p95_ms": pytest.approx(29.0),  # linear interpolation between 20 and 30
        "served_p50_ms": pytest.approx(503.0),
        "served_p95_ms": pytest.approx(509.1),  # 504 + 0.85 * (510 - 504)
        "scoring_items": 9,  # the timed-out slate's scoring is unknown
        "scored_items": 7,
        "capped_slates": 1,
        "audit_slates": 4,
        "late_slates": 0,
        "served_hist": {"500": 1, "502": 1, "504": 1, "510": 1},
    }
    assert control["arm_slug"] == "control"
    assert (control["slates"], control["nrc_mean"], control["fallbacks"]) == (2, 0.0, {})
    # Baseline slates are left out of the latency audit; the other one came 10 ms after its hold: not late.
    assert (control["audit_slates"], control["late_slates"], control["served_hist"]) == (1, 0, {"560": 1})
    assert (control["scoring_items"], control["scored_items"], control["capped_slates"]) == (0, 0, 0)


def test_an_answer_more_than_50_ms_after_its_hold_is_counted_late(study: Study) -> None:
    slate(study, at(DAY, 9), served_ms=550.0)
    slate(study, at(DAY, 10), served_ms=550.5)
    slate(study, at(DAY, 11), served_ms=900.0, phase="baseline")

    rollup_study_day(study_id=study.id, day=DAY)

    [row] = DailyArmRollup.objects.filter(study=study)
    assert (row.slates, row.audit_slates, row.late_slates) == (3, 2, 1)


def test_platforms_and_content_types_get_their_own_rows(study: Study) -> None:
    slate(study, at(DAY, 9), platform="reddit", content_type="comment")
    slate(study, at(DAY, 9), platform="reddit", content_type="post")
    slate(study, at(DAY, 9), platform="facebook", content_type="post")
    rollup_study_day(study_id=study.id, day=DAY)
    keys = set(DailyArmRollup.objects.values_list("platform", "content_type", "slates"))
    assert keys == {("reddit", "comment", 1), ("reddit", "post", 1), ("facebook", "post", 1)}


def test_rolling_up_twice_gives_the_same_rows(known_day: Study) -> None:
    rollup_study_day(study_id=known_day.id, day=DAY)
    first = without_volatile(rollup_values(known_day))
    rollup_study_day(study_id=known_day.id, day=DAY)
    assert without_volatile(rollup_values(known_day)) == first
    assert DailyArmRollup.objects.count() == 2


def test_a_rerun_replaces_the_day_with_what_the_log_now_holds(known_day: Study) -> None:
    rollup_study_day(study_id=known_day.id, day=DAY)
    Slate.objects.filter(effective_arm="control").delete()
    slate(known_day, at(DAY, 13), nrc=0.3, platform="reddit")
    rollup_study_day(study_id=known_day.id, day=DAY)
    assert set(DailyArmRollup.objects.values_list("arm_slug", "platform", "slates")) == {
        ("uprank_bridging", "twitter", 4),
        ("uprank_bridging", "reddit", 1),
    }


def test_a_day_without_slates_leaves_no_rows(study: Study) -> None:
    assert rollup_study_day(study_id=study.id, day=DAY) == 0
    assert not DailyArmRollup.objects.exists()


def test_days_follow_the_study_time_zone_including_daylight_saving() -> None:
    start, end = day_bounds(dt.date(2024, 11, 3), "America/New_York")  # clocks go back: a 25-hour day
    assert start == dt.datetime(2024, 11, 3, 4, tzinfo=dt.UTC)
    assert end - start == dt.timedelta(hours=25)


def test_rollup_day_covers_every_study(known_day: Study) -> None:
    assert rollup_day(day=DAY) == 3
    assert DailyArmRollup.objects.values("study").distinct().count() == 2


def test_the_task_rolls_up_the_day_it_is_given(known_day: Study) -> None:
    assert tasks.rollup_day.apply(args=[DAY.isoformat()], kwargs={"study_ids": [known_day.id]}).get() == 2
    assert DailyArmRollup.objects.filter(study=known_day).count() == 2


def test_recent_days_are_yesterday_and_today_in_the_study_time_zone(study: Study) -> None:
    slate(study, at(DAY, 22))
    slate(study, at(DAY + dt.timedelta(days=1), 22, 30))
    slate(study, at(DAY - dt.timedelta(days=1), 12))  # the day before yesterday: left alone
    now = at(DAY + dt.timedelta(days=1), 23)  # already the day after in UTC
    assert rollup_recent_days(now=now) == 2
    assert set(DailyArmRollup.objects.values_list("day", flat=True)) == {DAY, DAY + dt.timedelta(days=1)}


def test_beat_runs_the_recent_rollup_every_fifteen_minutes() -> None:
    entries = [
        entry for entry in settings.CELERY_BEAT_SCHEDULE.values() if entry["task"] == tasks.rollup_recent_days.name
    ]
    assert len(entries) == 1
    assert entries[0]["schedule"] == 15 * 60


def test_backfill_rolls_up_each_day_of_the_range_and_reports_progress(known_day: Study) -> None:
    out = io.StringIO()
    call_command(
        "backfill_rollups",
        "--start",
        (DAY - dt.timedelta(days=1)).isoformat(),
        "--end",
        (DAY + dt.timedelta(days=1)).isoformat(),
        "--study",
        known_day.slug,
        stdout=out,
    )
    lines = out.getvalue().splitlines()
    assert lines[:3] == [
        "[1/3] 2024-09-30: 1 rollup rows",
        "[2/3] 2024-10-01: 2 rollup rows",
        "[3/3] 2024-10-02: 1 rollup rows",
    ]
    assert lines[3].startswith("Rolled up 3 days, 4 rows")
    assert DailyArmRollup.objects.filter(study=known_day).count() == 4
    assert not DailyArmRollup.objects.exclude(study=known_day).exists()


def test_backfill_rejects_a_reversed_range() -> None:
    with pytest.raises(CommandError, match="--start must not be after --end"):
        call_command("backfill_rollups", "--start", "2024-10-02", "--end", "2024-10-01")


def test_backfill_rejects_an_unknown_study() -> None:
    with pytest.raises(CommandError, match="No study"):
        call_command("backfill_rollups", "--start", "2024-10-01", "--end", "2024-10-01", "--study", "nope")


def _content(slate_ids: list[str], texts: dict[str, str]) -> list[str]:
    """Store the content of ``slate_ids`` (empty text for the ones ``texts`` says) and return their hashes."""
    from rankers.models import ContentItem, text_hash

    hashes = []
    for item_id in slate_ids:
        text = texts.get(item_id, "words")
        digest = text_hash(text)
        ContentItem.objects.get_or_create(platform="reddit", item_id=item_id, text_hash=digest, defaults={"text": text})
        hashes.append(digest)
    return hashes


def test_backfill_remeasures_old_slates_with_the_papers_nrc_and_rolls_them_up(study: Study) -> None:
    original = [f"p{i}" for i in range(60)] + ["photo"]
    returned = [f"p{i}" for i in reversed(range(50))] + [f"p{i}" for i in range(50, 60)] + ["photo"]
    # Logged before the change: no fixed items, no slate length, NRC over every item and the request's length.
    old = slate(
        study, at(DAY, 9), platform="reddit", original_ids=original, returned_ids=returned,
        original_hashes=_content(original, {"photo": ""}), nrc=1250 / 61 / 61, n_items=61, slate_length=None,
    )  # fmt: skip
    # Logged after: its fixed items are known and it is recomputed exactly.
    new = slate(
        study, at(DAY, 10), platform="reddit", original_ids=["a", "ad", "b", "c"], returned_ids=["c", "ad", "b", "a"],
        fixed_items={"ad": "ad"}, slate_length=4, nrc=0.375, n_items=4,
    )  # fmt: skip
    out = io.StringIO()

    call_command("backfill_rollups", "--start", str(DAY), "--end", str(DAY), "--remeasure", stdout=out)

    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.nrc, old.slate_length, old.slate_pass) == (pytest.approx(0.5), 50, 1)
    assert old.fixed_items == {"photo": "no_text", **{f"p{i}": "past_slate_size" for i in range(50, 60)}}
    assert new.nrc == pytest.approx(6 / 3 / 4)
    assert "2 slates remeasured" in out.getvalue()
    row = DailyArmRollup.objects.get(study=study, day=DAY)
    assert row.nrc_mean == pytest.approx((0.5 + 0.5) / 2)


def test_remeasuring_twice_changes_nothing_the_second_time(study: Study) -> None:
    slate(study, at(DAY, 9), fixed_items={}, slate_length=3, nrc=0.9)
    first, second = io.StringIO(), io.StringIO()

    call_command("backfill_rollups", "--start", str(DAY), "--end", str(DAY), "--remeasure", stdout=first)
    call_command("backfill_rollups", "--start", str(DAY), "--end", str(DAY), "--remeasure", stdout=second)

    assert "1 slates remeasured" in first.getvalue()
    assert "0 slates remeasured" in second.getvalue()


def test_backfill_refuses_more_than_3660_days_at_a_time_and_writes_nothing(known_day: Study) -> None:
    with pytest.raises(CommandError, match="at most 3660 days"):
        call_command("backfill_rollups", "--start", "2014-01-01", "--end", "2024-01-09")  # 3661 days

    assert not DailyArmRollup.objects.exists()


def test_backfill_of_a_malformed_date_names_it() -> None:
    with pytest.raises(CommandError, match="'2024-02-30' is not a date"):
        call_command("backfill_rollups", "--start", "2024-02-30", "--end", "2024-03-01")
