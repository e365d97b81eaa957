"""The slate log's periodic jobs, as beat runs them: the Redis fallback drain and the monthly partitions."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import pytest
import redis
from django.db import connection
from django.utils import timezone

from rankers import slatelog
from rankers.models import Slate
from rankers.tasks import drain_slate_fallback, ensure_slate_partitions
from tests.rankers.test_rank_arms_and_log import _record

pytestmark = pytest.mark.django_db


@pytest.fixture
def fallback(settings) -> Iterator[tuple[redis.Redis, str]]:  # type: ignore[no-untyped-def]
    settings.RANK_FALLBACK_KEY = key = f"test:slate_fallback:{uuid.uuid4().hex}"
    client = redis.Redis.from_url(slatelog.redis_url())
    yield client, key
    client.delete(key, key + ":processing", key + ":failed")


def test_drain_returns_slates_a_crashed_run_left_in_processing(fallback: tuple[redis.Redis, str]) -> None:
    client, key = fallback
    now = timezone.now().isoformat()
    # A run took these two off the list and died before writing them; one more slate arrived since.
    client.rpush(key + ":processing", _record("p-crashed-1", served_at=now).to_json())
    client.rpush(key + ":processing", _record("p-crashed-2", served_at=now).to_json())
    client.rpush(key, _record("p-later", served_at=now).to_json())

    assert drain_slate_fallback() == 3

    stored = Slate.objects.filter(participant_id__in=["p-crashed-1", "p-crashed-2", "p-later"])
    assert sorted(stored.values_list("participant_id", flat=True)) == ["p-crashed-1", "p-crashed-2", "p-later"]
    assert client.llen(key) == client.llen(key + ":processing") == client.llen(key + ":failed") == 0


def test_a_second_drain_finds_nothing_to_move(fallback: tuple[redis.Redis, str]) -> None:
    client, key = fallback
    client.rpush(key + ":processing", _record("p-once", served_at=timezone.now().isoformat()).to_json())

    assert drain_slate_fallback() == 1
    assert drain_slate_fallback() == 0
    assert Slate.objects.filter(participant_id="p-once").count() == 1


def _month_start(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def _partitions() -> dict[str, str]:
    """Partition name -> its bound, read from the catalogue."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'rankers_slate'::regclass"
        )
        return dict(cursor.fetchall())


def test_partition_job_creates_each_month_ahead_with_utc_month_bounds() -> None:
    today = timezone.now().astimezone(dt.UTC).date()

    ensure_slate_partitions(months_ahead=5)

    partitions = _partitions()
    assert partitions.pop("rankers_slate_default") == "DEFAULT"
    for offset in range(-1, 6):  # last month to five months ahead
        start, end = _month_start(today, offset), _month_start(today, offset + 1)
        name = f"rankers_slate_{start:%Y_%m}"
        assert partitions[name] == f"FOR VALUES FROM ('{start} 00:00:00+00') TO ('{end} 00:00:00+00')", name


def test_partition_job_is_idempotent_and_counts_only_new_months() -> None:
    far = 30  # further ahead than anything else creates, so the counts below are this test's own
    ensure_slate_partitions(months_ahead=far)
    before = set(_partitions())

    assert ensure_slate_partitions(months_ahead=far) == 0
    assert ensure_slate_partitions(months_ahead=far + 1) == 1
    assert set(_partitions()) - before == {f"rankers_slate_{_month_start(timezone.now().date(), far + 1):%Y_%m}"}


def test_a_slate_months_ahead_lands_in_its_month_and_not_the_default_partition() -> None:
    ensure_slate_partitions(months_ahead=3)
    served = timezone.now().astimezone(dt.UTC) + dt.timedelta(days=62)
    slatelog.write_slates_sync([_record("p-future", served_at=served.isoformat())])

    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM rankers_slate WHERE participant_id = 'p-future'")
        assert cursor.fetchone() == (f"rankers_slate_{served:%Y_%m}",)
