"""The content health page: freshness rule, rows, charts, and who may open it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from participants.roles import READER, create_roles
from rankers.content import charts, services
from rankers.content.dashboard import PoolRow, pool_rows, source_rows
from rankers.content.freshness import stale_reason
from rankers.content.models import Connector, ConnectorRun
from tests.factories import login
from tests.rankers.content.conftest import make_source

PAGE = "/research/ranking/content/"
NOW = dt.datetime(2026, 12, 3, 12, tzinfo=dt.UTC)
DAY = dt.timedelta(hours=24)


def hours_ago(hours: float) -> dt.datetime:
    return NOW - dt.timedelta(hours=hours)


@pytest.mark.parametrize(
    ("active", "newest", "success", "reason"),
    [
        (True, hours_ago(1), hours_ago(1), None),
        (False, None, None, None),
        (True, hours_ago(1), None, "no successful run yet"),
        (True, hours_ago(1), hours_ago(30), "no successful run for 30 h (limit 24 h)"),
        (True, None, hours_ago(1), "no posts yet"),
        (True, hours_ago(50), hours_ago(1), "newest post is 50 h old (limit 24 h)"),
        (True, hours_ago(50), hours_ago(40), "no successful run for 40 h (limit 24 h)"),
        (True, NOW + dt.timedelta(hours=5), hours_ago(1), None),
        (True, hours_ago(24), hours_ago(24), None),
    ],
)
def test_an_active_source_is_stale_without_a_recent_successful_run_or_a_recent_post(
    active: bool, newest: dt.datetime | None, success: dt.datetime | None, reason: str | None
) -> None:
    assert stale_reason(active=active, newest_post_at=newest, last_success_at=success, now=NOW, limit=DAY) == reason


def test_the_pool_chart_stacks_every_lean_on_every_platform_even_without_posts() -> None:
    fig = charts.pool_figure([PoolRow("reddit", "left", posts=9, fresh_posts=4)], limit_h=24)
    assert [trace.name for trace in fig.data] == ["Left", "Centre", "Right", "Not rated"]
    assert list(fig.data[0].x) == ["Facebook", "Reddit", "X/Twitter"]
    assert list(fig.data[0].y) == [0, 4, 0]
    assert sum(sum(trace.y) for trace in fig.data) == 4


def dataset(posts: list[tuple[str, dt.datetime]]) -> bytes:
    return "".join(
        f'{{"id": "{pid}", "url": "https://x.com/a/status/{pid}", "text": "t", "createdAt": "{at.isoformat()}"}}\n'
        for pid, at in posts
    ).encode()


@pytest.fixture
def inventory() -> dict[str, int]:
    """A fresh left source, a right source gone quiet, a failing feed, and an inactive source."""
    now = dt.datetime.now(dt.UTC)
    fresh = make_source(name="Fresh left", connector=Connector.DATASET, location="", lean="left")
    quiet = make_source(name="Quiet right", connector=Connector.DATASET, location="", lean="right")
    failing = make_source(name="Failing feed", location="http://127.0.0.1:9/feed.xml", lean="centre")
    off = make_source(name="Switched off", connector=Connector.DATASET, location="", active=False)
    services.fetch_source(source_id=fresh.pk, data=dataset([("1", now - dt.timedelta(hours=2)), ("2", now)]))
    services.fetch_source(source_id=quiet.pk, data=dataset([("3", now - dt.timedelta(hours=72))]))
    services.fetch_source(source_id=off.pk, data=dataset([("4", now)]))
    ConnectorRun.objects.create(
        source=failing, connector="rss", status="failed", error="not an RSS or Atom feed", finished_at=now
    )
    return {"fresh": fresh.pk, "quiet": quiet.pk, "failing": failing.pk, "off": off.pk}


@pytest.mark.django_db
def test_pools_count_active_sources_posts_by_platform_and_lean_with_the_fresh_ones_apart(
    inventory: dict[str, int],
) -> None:
    rows = pool_rows(now=dt.datetime.now(dt.UTC), limit=DAY)
    assert rows == [PoolRow("twitter", "left", 2, 2), PoolRow("twitter", "right", 1, 0)]


@pytest.mark.django_db
def test_source_rows_list_stale_sources_first_with_their_last_run(inventory: dict[str, int]) -> None:
    rows = source_rows(now=dt.datetime.now(dt.UTC), limit=DAY)
    by_id = {row.source_id: row for row in rows}
    assert [row.source_id for row in rows[:2]] == [inventory["failing"], inventory["quiet"]]
    assert by_id[inventory["failing"]].stale == "no successful run yet"
    assert by_id[inventory["failing"]].last_run_error == "not an RSS or Atom feed"
    assert by_id[inventory["quiet"]].stale == "newest post is 72 h old (limit 24 h)"
    fresh = by_id[inventory["fresh"]]
    assert (fresh.stale, fresh.posts, fresh.last_run_status, fresh.last_run_new) == (None, 2, "succeeded", 2)
    assert fresh.newest_post_age_h is not None
    assert fresh.newest_post_age_h < 0.1
    assert by_id[inventory["off"]].stale is None
    assert rows[-1].source_id == inventory["off"]


@pytest.mark.django_db
def test_a_researcher_sees_the_stale_warning_and_each_sources_last_error(inventory: dict[str, int]) -> None:
    create_roles()
    response = login("content-health-reader", READER).get(PAGE)
    assert response.status_code == 200
    page = response.content.decode()
    assert "2 active sources stale:" in page
    assert "not an RSS or Atom feed" in page
    assert 'id="content-pools"' in page
    assert 'id="content-ages"' in page


@pytest.mark.django_db
def test_the_content_page_is_for_researchers_only() -> None:
    create_roles()
    assert Client().get(PAGE).status_code == 302
    assert login("content-no-role").get(PAGE).status_code == 403
    empty = login("content-superuser", superuser=True).get(PAGE)
    assert empty.status_code == 200
    assert "No content sources yet" in empty.content.decode()


@pytest.mark.django_db
def test_the_last_run_is_the_newest_and_the_last_success_survives_a_later_failure() -> None:
    source = make_source(name="Flaky")
    now = dt.datetime.now(dt.UTC)
    for hours, status in ((5, "succeeded"), (3, "succeeded"), (1, "failed")):
        at = now - dt.timedelta(hours=hours)
        ConnectorRun.objects.create(
            source=source, connector="rss", status=status, started_at=at, finished_at=at, error=f"{status} {hours}"
        )
    (row,) = source_rows(now=now, limit=DAY)
    assert (row.last_run_status, row.last_run_error) == ("failed", "failed 1")
    assert row.last_success_at == now - dt.timedelta(hours=3)
    assert row.stale == "no posts yet"
