"""Each connector against fixture documents served on loopback: what is stored, what is counted, what fails."""

from __future__ import annotations

import datetime as dt
import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from rankers.content import services, tasks
from rankers.content.models import CandidatePost, Connector, ConnectorRun
from tests.rankers.content.conftest import FIXTURES, FeedServer, make_source

pytestmark = pytest.mark.django_db

UTC = dt.UTC


def inventory() -> list[tuple[str, str, str]]:
    return list(CandidatePost.objects.order_by("platform", "post_id").values_list("platform", "post_id", "url"))


def test_rss_feed_items_become_candidate_posts_with_text_alt_text_and_times(feed_server: FeedServer) -> None:
    source = make_source(location=feed_server.serve_fixture("/feed.xml", "outlet.rss"), platform="twitter")

    run = services.fetch_source(source_id=source.pk)

    assert run is not None
    assert run.status == ConnectorRun.Status.SUCCEEDED
    assert (run.items_read, run.items_new, run.items_duplicate, run.items_skipped) == (3, 2, 0, 1)
    assert run.item_errors == [{"item": 3, "reason": "no public http(s) URL"}]
    bridge = CandidatePost.objects.get(post_id="example-7")
    assert bridge.url == "https://news.example.org/2026/12/bridge?id=7"
    assert bridge.title == "Council approves & funds new bridge"
    assert bridge.text == "The council voted 7 to 2.\n\nWork starts in spring."
    assert bridge.media_alt_text == "The old bridge at dusk"
    assert bridge.author == "Ann Reporter"
    assert bridge.created_at == dt.datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
    assert (bridge.platform, bridge.source_id) == ("twitter", source.pk)
    storm = CandidatePost.objects.get(url="https://news.example.org/2026/12/storm")
    assert storm.author == "Example outlet"  # no author in the feed: the outlet


def test_atom_feeds_are_read_by_the_same_connector(feed_server: FeedServer) -> None:
    source = make_source(location=feed_server.serve_fixture("/atom", "outlet.atom"))
    services.fetch_source(source_id=source.pk)
    post = CandidatePost.objects.get()
    assert (post.post_id, post.title, post.text, post.author) == (
        "urn:example:atom:1",
        "Atom entry one",
        "First entry text.",
        "Bo Writer",
    )


def test_fetching_a_feed_twice_stores_each_post_once_and_counts_the_repeat_as_duplicates(
    feed_server: FeedServer,
) -> None:
    source = make_source(location=feed_server.serve_fixture("/feed.xml", "outlet.rss"))
    tasks.fetch_source.delay(source.pk)
    first = inventory()
    run_id = tasks.fetch_source.delay(source.pk).get()

    assert inventory() == first
    assert len(first) == 2
    second = ConnectorRun.objects.get(pk=run_id)
    assert (second.items_new, second.items_duplicate, second.status) == (0, 2, "succeeded")


def test_the_same_article_from_two_sources_is_stored_once_by_url(feed_server: FeedServer) -> None:
    rss = feed_server.serve_fixture("/feed.xml", "outlet.rss")
    one = make_source(name="One", location=rss)
    two = make_source(name="Two", location=rss + "?copy=1")
    feed_server.routes["/feed.xml?copy=1"] = feed_server.routes["/feed.xml"]
    services.fetch_source(source_id=one.pk)
    run = services.fetch_source(source_id=two.pk)
    assert run is not None
    assert run.items_duplicate == 2
    assert set(CandidatePost.objects.values_list("source_id", flat=True)) == {one.pk}


def test_a_post_with_a_new_id_but_a_known_url_is_a_duplicate(feed_server: FeedServer) -> None:
    source = make_source(connector=Connector.DATASET, platform="twitter", location="")
    row = '{"id": "%s", "url": "https://x.com/a/status/1", "text": "same post"}\n'
    services.fetch_source(source_id=source.pk, data=(row % "1").encode())
    run = services.fetch_source(source_id=source.pk, data=(row % "1-renamed").encode())
    assert run is not None
    assert (run.items_new, run.items_duplicate) == (0, 1)
    assert CandidatePost.objects.get().post_id == "1"


def test_reddit_listing_posts_are_stored_with_their_permalink_and_gallery_captions(feed_server: FeedServer) -> None:
    source = make_source(
        connector=Connector.REDDIT,
        platform="reddit",
        kind="subreddit",
        location=feed_server.serve_fixture("/r/news/hot.json", "listing.json", content_type="application/json"),
    )
    run = services.fetch_source(source_id=source.pk)
    assert run is not None
    assert (run.items_read, run.items_new, run.items_skipped) == (4, 2, 2)
    assert {e["reason"] for e in run.item_errors} == {"pinned by the moderators", "marked NSFW"}
    library = CandidatePost.objects.get(post_id="t3_a1")
    assert library.url == "https://www.reddit.com/r/news/comments/a1/local_library/"
    assert (library.title, library.text, library.author) == (
        "Local library extends hours",
        "Open until 9pm now.",
        "readerone",
    )
    assert library.created_at == dt.datetime.fromtimestamp(1796205600, tz=UTC)
    assert CandidatePost.objects.get(post_id="t3_b2").media_alt_text == "Children on the new swings"


def test_an_apify_json_lines_export_is_imported_from_a_url_and_bad_lines_are_reported_by_number(
    feed_server: FeedServer,
) -> None:
    url = feed_server.serve_fixture("/v2/datasets/abc/items", "dataset.jsonl", content_type="application/jsonl")
    source = make_source(connector=Connector.DATASET, platform="twitter", kind="account", location=url)
    run = services.fetch_source(source_id=source.pk)
    assert run is not None
    assert (run.items_read, run.items_new, run.items_skipped) == (4, 2, 2)
    assert [e["item"] for e in run.item_errors] == [3, 4]
    assert run.item_errors[0]["reason"].startswith("not JSON")
    vote = CandidatePost.objects.get(post_id="1860000000000000001")
    assert (vote.author, vote.media_alt_text) == ("newsdesk", "Lawmakers raising hands")
    assert vote.created_at == dt.datetime(2026, 12, 2, 8, tzinfo=UTC)


def test_a_csv_export_is_imported_from_a_file_by_hand_with_line_numbers_for_bad_rows() -> None:
    source = make_source(connector=Connector.DATASET, platform="facebook", kind="page", location="")
    out = StringIO()
    call_command("fetch_content", source=[source.pk], file=FIXTURES / "dataset.csv", stdout=out)

    assert "succeeded; read 3, new 2, duplicate 0, skipped 1" in out.getvalue()
    run = ConnectorRun.objects.get()
    assert (run.trigger, run.item_errors) == ("file", [{"item": 5, "reason": "no public http(s) URL"}])
    town_hall = CandidatePost.objects.get(post_id="101")
    assert (town_hall.author, town_hall.media_alt_text) == ("Example Page", "May be an image of a town hall")
    assert CandidatePost.objects.get(post_id="102").text == "Second post,\nover two lines"


def test_the_command_fetches_every_active_source_of_a_connector_and_no_other(feed_server: FeedServer) -> None:
    rss = make_source(location=feed_server.serve_fixture("/feed.xml", "outlet.rss"))
    make_source(name="Off", location=feed_server.serve_fixture("/off.xml", "outlet.atom"), active=False)
    out = StringIO()
    call_command("fetch_content", connector="rss", stdout=out)
    assert out.getvalue().startswith(f"source {rss.pk}: succeeded")
    assert feed_server.hits == {"/feed.xml": 1}


def test_the_beat_task_queues_one_fetch_per_active_source_of_its_connector(feed_server: FeedServer) -> None:
    make_source(name="A", location=feed_server.serve_fixture("/a.xml", "outlet.rss"))
    make_source(name="B", location=feed_server.serve_fixture("/b.xml", "outlet.atom"))
    make_source(name="Reddit", connector=Connector.REDDIT, location=feed_server.url + "/r.json")
    assert tasks.fetch_sources.delay("rss").get() == 2
    assert ConnectorRun.objects.filter(status="succeeded").count() == 2
    assert feed_server.hits == {"/a.xml": 1, "/b.xml": 1}


def test_the_beat_schedule_runs_each_connector_through_the_registered_task() -> None:
    from django.conf import settings

    from prc_site.celery import app

    app.loader.import_default_modules()
    entries = {k: v for k, v in settings.CELERY_BEAT_SCHEDULE.items() if k.startswith("rankers.content.fetch_")}
    assert sorted(entry["args"][0] for entry in entries.values()) == sorted(Connector.values)  # type: ignore[index]
    assert {entry["task"] for entry in entries.values()} <= set(app.tasks)


def test_a_second_run_while_one_is_in_flight_does_nothing(feed_server: FeedServer) -> None:
    source = make_source(location=feed_server.serve_fixture("/feed.xml", "outlet.rss"))
    held = services.claim_run(source, trigger="schedule")
    assert held is not None
    assert services.fetch_source(source_id=source.pk) is None
    assert feed_server.hits == {}
    assert not CandidatePost.objects.exists()


def test_a_run_left_running_by_a_dead_worker_is_failed_after_its_lease(feed_server: FeedServer) -> None:
    source = make_source(location=feed_server.serve_fixture("/feed.xml", "outlet.rss"))
    stuck = services.claim_run(source, trigger="schedule", now=dt.datetime.now(UTC) - dt.timedelta(hours=1))
    assert stuck is not None
    run = services.fetch_source(source_id=source.pk)
    assert run is not None
    assert run.status == "succeeded"
    stuck.refresh_from_db()
    assert (stuck.status, stuck.error) == ("failed", "abandoned: the worker stopped mid-run")


# --- bad input: the run fails with its reason, the inventory stays as it was ---------------------


@pytest.fixture
def stocked(feed_server: FeedServer) -> list[tuple[str, str, str]]:
    """An inventory with the RSS fixture's two posts already in it."""
    source = make_source(name="Stocked", location=feed_server.serve_fixture("/stock.xml", "outlet.rss"))
    services.fetch_source(source_id=source.pk)
    return inventory()


@pytest.mark.parametrize(
    ("connector", "body", "content_type", "reason"),
    [
        (Connector.RSS, "<!doctype html><html><body><h1>Sign in</h1></body></html>", "text/html", "not an RSS or Atom"),
        (Connector.RSS, b"\x00\xff\xfegarbage{{{", "application/octet-stream", "not an RSS or Atom"),
        (Connector.RSS, '<?xml version="1.0"?><rss version="2.0"><channel><title>x', "application/xml", "unreadable"),
        (
            Connector.RSS,
            '<?xml version="1.0"?><rss version="2.0"><channel><item><title>x',
            "application/xml",
            "no usable item",
        ),
        (Connector.REDDIT, "<html>Too many requests</html>", "text/html", "not JSON"),
        (Connector.REDDIT, '{"kind": "t3", "data": {}}', "application/json", "not a Reddit listing"),
        (Connector.DATASET, "<html><body>Apify console</body></html>", "text/html", "HTML or XML"),
        (Connector.DATASET, "not json\nat all\n", "text/plain", "no URL column"),
        (Connector.DATASET, "{oops\n{also bad\n", "application/jsonl", "no line is a JSON object"),
        (Connector.DATASET, b"\xff\xfe\x00u\x00r\x00l", "text/csv", "not UTF-8"),
        (Connector.DATASET, '{"id": 1, "text": "no url"}\n', "application/jsonl", "no usable item"),
    ],
)
def test_garbage_marks_the_run_failed_with_the_reason_and_leaves_the_inventory_intact(
    feed_server: FeedServer,
    stocked: list[tuple[str, str, str]],
    connector: str,
    body: str | bytes,
    content_type: str,
    reason: str,
) -> None:
    source = make_source(
        name="Bad", connector=connector, location=feed_server.serve("/bad", body, content_type=content_type)
    )
    run = services.fetch_source(source_id=source.pk)
    assert run is not None
    assert run.status == "failed"
    assert reason in run.error
    assert inventory() == stocked


def test_an_http_error_fails_the_run_with_the_status(
    feed_server: FeedServer, stocked: list[tuple[str, str, str]]
) -> None:
    source = make_source(name="Gone", location=feed_server.url + "/missing.xml")
    run = services.fetch_source(source_id=source.pk)
    assert run is not None
    assert run.error.startswith("HTTP 404 from")
    assert inventory() == stocked


@override_settings(PRC_CONTENT_FETCH_TIMEOUT_S=0.3)
def test_a_feed_that_does_not_answer_in_time_fails_the_run_as_timed_out(
    feed_server: FeedServer, stocked: list[tuple[str, str, str]]
) -> None:
    url = feed_server.serve_fixture("/slow.xml", "outlet.rss", delay_s=5)
    source = make_source(name="Slow", location=url)
    run = services.fetch_source(source_id=source.pk)
    assert run is not None
    assert run.status == "failed"
    assert run.error.startswith("timed out after 0.3 s")
    assert inventory() == stocked


@override_settings(PRC_CONTENT_MAX_BYTES=100)
def test_a_body_larger_than_the_limit_fails_the_run(feed_server: FeedServer) -> None:
    source = make_source(location=feed_server.serve_fixture("/feed.xml", "outlet.rss"))
    run = services.fetch_source(source_id=source.pk)
    assert run is not None
    assert run.error == "response larger than 100 bytes"


def test_the_command_reports_failed_runs_and_exits_with_an_error(feed_server: FeedServer) -> None:
    source = make_source(location=feed_server.serve("/x", "<html></html>", content_type="text/html"))
    out = StringIO()
    with pytest.raises(CommandError, match="1 of 1 runs failed"):
        call_command("fetch_content", source=[source.pk], stdout=out)
    assert "failed; read 0" in out.getvalue()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "either --connector or --source"),
        ({"connector": "rss", "source": [1]}, "either --connector or --source"),
        ({"source": [1, 2], "file": FIXTURES / "dataset.csv"}, "exactly one --source"),
        ({"source": [1], "url": "file:///etc/passwd"}, "http or https"),
        ({"source": [999999]}, "No content source with id 999999"),
    ],
)
def test_the_command_refuses_unclear_requests(options: dict[str, object], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("fetch_content", **options)


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_knows_the_fetch_task_and_fills_the_inventory_through_the_broker(
    celery_worker_queue: str, feed_server: FeedServer
) -> None:
    source = make_source(location=feed_server.serve_fixture("/feed.xml", "outlet.rss"))
    tasks.fetch_source.apply_async(args=[source.pk], queue=celery_worker_queue)
    deadline = time.monotonic() + 30
    while not ConnectorRun.objects.filter(source=source).exclude(status="running").exists():
        assert time.monotonic() < deadline, "the worker did not finish the run"
        time.sleep(0.2)
    assert ConnectorRun.objects.get(source=source).items_new == 2
    assert CandidatePost.objects.filter(source=source).count() == 2
