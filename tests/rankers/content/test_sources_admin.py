"""Content sources in the admin: CSV export, CSV import (all or nothing, or partial on request), fetch now."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from participants.roles import PI, READER, create_roles
from rankers.content.models import ConnectorRun, ContentSource
from rankers.content.source_csv import COLUMNS, import_sources_csv, sources_to_csv
from tests.factories import login
from tests.rankers.content.conftest import FeedServer, make_source

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/rankers/contentsource/"
IMPORT = CHANGELIST + "import-csv/"
EXPORT = CHANGELIST + "export-csv/"
HEADER = ",".join(COLUMNS)


@pytest.fixture(autouse=True)
def roles() -> dict[str, Group]:
    return create_roles()


@pytest.fixture
def pi() -> Client:
    return login("content-pi", PI)


def upload(client: Client, text: str, *, partial: bool = False) -> object:
    data: dict[str, object] = {"file": SimpleUploadedFile("sources.csv", text.encode(), content_type="text/csv")}
    if partial:
        data["partial"] = "on"
    return client.post(IMPORT, data)


def csv_of(*rows: str) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


GOOD = "Daily Example,twitter,news_outlet,rss,https://news.example.org/feed.xml,left,82,add_news;diverse_approval,true"
GOOD_REDDIT = "r/news,reddit,subreddit,reddit,https://www.reddit.com/r/news/hot.json,,,,false"


def test_a_researcher_imports_sources_from_csv_and_exports_the_same_rows(pi: Client) -> None:
    response = upload(pi, csv_of(GOOD, GOOD_REDDIT))
    assert response.status_code == 302  # type: ignore[attr-defined]

    outlet = ContentSource.objects.get(platform="twitter")
    assert (outlet.name, outlet.lean, outlet.reliability, outlet.arms, outlet.active) == (
        "Daily Example",
        "left",
        82,
        ["add_news", "diverse_approval"],
        True,
    )
    assert ContentSource.objects.get(platform="reddit").active is False
    exported = pi.get(EXPORT)
    assert exported["Content-Type"] == "text/csv; charset=utf-8"
    assert exported.content.decode() == csv_of(GOOD_REDDIT, GOOD)


def test_importing_an_export_again_updates_the_same_sources_instead_of_adding_new_ones(pi: Client) -> None:
    upload(pi, csv_of(GOOD, GOOD_REDDIT))
    edited = pi.get(EXPORT).content.decode().replace(",left,82,", ",right,40,")
    upload(pi, edited)
    assert ContentSource.objects.count() == 2
    outlet = ContentSource.objects.get(platform="twitter")
    assert (outlet.lean, outlet.reliability) == ("right", 40)


def test_a_csv_with_bad_rows_reports_each_row_by_line_and_imports_nothing(pi: Client) -> None:
    text = csv_of(
        GOOD,
        "Bad lean,twitter,news_outlet,rss,https://b.example.org/feed,far-left,50,,true",
        '"Multi\nline name",mastodon,account,rss,https://c.example.org/feed,,101,,maybe',
        "No address,twitter,news_outlet,rss,,,,,true",
        "Copy,twitter,news_outlet,rss,https://news.example.org/feed.xml,,,,true",
        "Unknown arm,twitter,news_outlet,rss,https://d.example.org/feed,,,control,true",
    )
    response = upload(pi, text)

    assert response.status_code == 400  # type: ignore[attr-defined]
    assert not ContentSource.objects.exists()
    page = response.content.decode()  # type: ignore[attr-defined]
    assert "Nothing was imported" in page
    result = import_sources_csv(text.encode())
    assert [(e.line, e.column) for e in result.errors] == [
        (3, "lean"),
        (4, "active"),
        (4, "platform"),
        (4, "reliability"),
        (6, "location"),
        (7, ""),
        (8, "arms"),
    ]
    assert str(result.errors[5]) == "line 7: the same source as line 2"
    for error in result.errors:
        assert f'data-line="{error.line}"' in page


def test_a_partial_import_stores_the_good_rows_and_lists_the_bad_ones(pi: Client) -> None:
    text = csv_of(GOOD, "Bad,twitter,news_outlet,rss,not-a-url,,,,true", GOOD_REDDIT)
    response = upload(pi, text, partial=True)
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert "Imported 2 good row(s)" in response.content.decode()  # type: ignore[attr-defined]
    assert sorted(ContentSource.objects.values_list("platform", flat=True)) == ["reddit", "twitter"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"name,platform\nx,twitter\n", "missing columns: connector, kind"),
        ((HEADER + ",colour\n").encode(), "unknown columns: colour"),
        (b"\xff\xfe" + HEADER.encode(), "not UTF-8"),
        ((HEADER + "\n" + GOOD + ",extra\n").encode(), "more values than columns"),
    ],
)
def test_a_file_that_is_not_a_sources_csv_is_refused_at_its_line(content: bytes, message: str) -> None:
    result = import_sources_csv(content)
    assert result.stored == 0
    assert len(result.errors) == 1
    assert message in str(result.errors[0])


def test_the_export_round_trips_through_the_import_unchanged() -> None:
    make_source(arms=["challenging_stereotypes"], reliability=0, lean="")
    make_source(name="File only", connector="dataset", location="", platform="facebook", kind="page", active=False)
    first = sources_to_csv(ContentSource.objects.order_by("pk"))
    result = import_sources_csv(first.encode())
    assert (result.created, result.updated, result.errors) == (0, 2, [])
    assert sources_to_csv(ContentSource.objects.order_by("pk")) == first


def test_a_read_only_researcher_may_export_but_not_import(pi: Client) -> None:
    make_source()
    reader = login("content-reader", READER)
    assert reader.get(EXPORT).status_code == 200
    assert reader.get(IMPORT).status_code == 403
    assert upload(reader, csv_of(GOOD_REDDIT)).status_code == 403  # type: ignore[attr-defined]
    assert ContentSource.objects.count() == 1


def test_fetch_now_queues_a_run_for_each_selected_active_source_after_commit(
    pi: Client, feed_server: FeedServer, django_capture_on_commit_callbacks: Any
) -> None:
    on = make_source(location=feed_server.serve_fixture("/on.xml", "outlet.rss"))
    off = make_source(name="Off", location=feed_server.serve_fixture("/off.xml", "outlet.rss"), active=False)
    with django_capture_on_commit_callbacks(execute=True) as queued:
        response = pi.post(CHANGELIST, {"action": "fetch_now", "_selected_action": [on.pk, off.pk]}, follow=True)
    assert len(queued) == 1
    assert "Queued 1 active source(s)" in response.content.decode()
    run = ConnectorRun.objects.get()
    assert (run.source_id, run.trigger, run.status) == (on.pk, "manual", "succeeded")


def test_runs_and_posts_are_read_only_in_the_admin(pi: Client) -> None:
    assert pi.get("/admin/rankers/connectorrun/").status_code == 200
    assert pi.get("/admin/rankers/candidatepost/").status_code == 200
    assert pi.get("/admin/rankers/candidatepost/add/").status_code == 403
    assert pi.get(CHANGELIST).status_code == 200
