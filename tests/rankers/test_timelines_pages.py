"""The ranking dashboards through HTTP: timelines, delivery and the slate inspector."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from pytest_django.asserts import assertContains

from participants.models import Study
from participants.roles import PI, READER
from rankers.dashboard import slate_orders, timeline_points
from rankers.models import ContentItem, Slate, text_hash
from rankers.rollups import rollup_day
from tests.factories import StudyFactory, paper_arms

pytestmark = pytest.mark.django_db

DAY = dt.date(2024, 10, 1)
RANGE = {"start": "2024-09-28", "end": "2024-10-05"}


def user_in(role: str | None, username: str) -> User:
    user = User.objects.create_user(username, password="pw-for-tests-only", is_staff=True)
    if role:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


@pytest.fixture
def study() -> Study:
    study = StudyFactory(status=Study.Status.RUNNING, timezone="UTC", rank_hold_ms=500)
    paper_arms(study)
    return study


def log_slate(study: Study, day: dt.date, arm: str, **fields: Any) -> Slate:
    values: dict[str, Any] = {
        "participant_id": "p_00000000000000aa",
        "arm": arm,
        "effective_arm": arm,
        "ranker_key": arm,
        "platform": "twitter",
        "content_type": "post",
        "original_ids": ["a", "b", "c", "d"],
        "returned_ids": ["b", "a", "c", "d"],
        "served_ms": 502.0,
        "ranker_ms": 30.0,
        "intervention_on": True,
        "nrc": 0.25,
        "hold_ms": 500.0,
        "phase": "assigned",
    }
    values.update(fields)
    return Slate.objects.create(
        study_id=study.id, served_at=dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC), **values
    )


@pytest.fixture
def rolled_up(study: Study) -> Study:
    """Three days of bridging and control slates, one Add News day, one timeout; rolled up."""
    for offset in range(3):
        day = DAY + dt.timedelta(days=offset)
        log_slate(study, day, "uprank_bridging", nrc=0.2 + 0.1 * offset)
        log_slate(study, day, "control", nrc=0.0, returned_ids=["a", "b", "c", "d"])
    log_slate(study, DAY, "add_news", nrc=0.0, n_added=2, returned_ids=["x", "a", "y", "b", "c", "d"])
    log_slate(study, DAY, "uprank_bridging", nrc=None, intervention_on=False, fallback_reason="timeout", ranker_ms=None)
    log_slate(study, DAY, "uprank_bridging", platform="reddit", nrc=0.9)
    for offset in range(3):
        rollup_day(day=DAY + dt.timedelta(days=offset))
    return study


@pytest.fixture
def researcher_client(client: Client) -> Client:
    client.force_login(user_in(READER, "reader"))
    return client


@pytest.fixture
def pi_client(client: Client) -> Client:
    client.force_login(user_in(PI, "pi"))
    return client


def plotted_traces(chart_html: str) -> list[dict[str, Any]]:
    """The trace list passed to Plotly.newPlot in one chart's HTML."""
    match = re.search(r'Plotly\.newPlot\(\s*"[^"]+",\s*(\[.*?\]),\s*\{"template"', chart_html, re.S)
    assert match, chart_html[:500]
    traces: list[dict[str, Any]] = json.loads(match.group(1))
    return traces


# --- access ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/research/ranking/timelines/", "/research/ranking/delivery/", "/research/ranking/slates/1/"]
)
def test_anonymous_visitors_are_sent_to_log_in(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_staff_without_a_research_role_are_refused(client: Client, study: Study) -> None:
    client.force_login(user_in(None, "nobody"))
    assert client.get("/research/ranking/timelines/").status_code == 403


def test_the_dashboard_root_opens_the_timelines(researcher_client: Client) -> None:
    assert researcher_client.get("/research/ranking/")["Location"] == "/research/ranking/timelines/"


@pytest.mark.parametrize(
    ("path", "current"),
    [("/research/ranking/timelines/", "Timelines"), ("/research/ranking/delivery/", "Delivery")],
)
def test_ranking_pages_have_the_shared_researcher_nav(
    researcher_client: Client, study: Study, path: str, current: str
) -> None:
    response = researcher_client.get(path)

    assertContains(response, '<a href="/research/funnel/">Funnel</a>', html=True)
    links = {"Timelines": "/research/ranking/timelines/", "Delivery": "/research/ranking/delivery/"}
    for label, href in links.items():
        marked = ' aria-current="page"' if label == current else ""
        assertContains(response, f'<a href="{href}"{marked}>{label}</a>', html=True)
    assertContains(response, '<a href="/admin/">Admin</a>', html=True)


# --- timelines ------------------------------------------------------------------------------------


def test_timelines_plot_one_line_per_arm_for_each_metric(researcher_client: Client, rolled_up: Study) -> None:
    response = researcher_client.get("/research/ranking/timelines/", {"study": rolled_up.slug, **RANGE})
    assert response.status_code == 200
    charts = response.context["charts"]
    assert len(charts) == 3
    for chart, div in zip(charts, ("nrc_mean", "added_mean", "deleted_mean"), strict=True):
        assert f'id="timeline-{div}"' in chart
        traces = plotted_traces(chart)
        assert [trace["name"] for trace in traces] == [arm.name for arm in rolled_up.arms.order_by("id")]
        assert all(len(trace["x"]) == 8 for trace in traces)  # every day of the range
    page = response.content.decode()
    assert "5-day moving average" in page
    assert '<script src="/research/static/plotly-' in page  # served locally, no CDN
    assert "cdn.plot.ly" not in page


def test_timelines_show_the_moving_average_of_the_selected_platform(
    researcher_client: Client, rolled_up: Study
) -> None:
    response = researcher_client.get(
        "/research/ranking/timelines/", {"study": rolled_up.slug, "platform": "twitter", **RANGE}
    )
    nrc = {trace["name"]: trace for trace in plotted_traces(response.context["charts"][0])}
    bridging = nrc["Uprank Bridging"]
    # Days 09-28..10-05; data on 10-01 (0.2; the timeout has no NRC), 10-02 (0.3), 10-03 (0.4).
    assert bridging["y"][:3] == [None, None, None]
    assert bridging["y"][3:6] == pytest.approx([0.2, 0.25, 0.3])
    assert bridging["y"][6:] == [None, None]  # the line stops with the data
    added = {trace["name"]: trace for trace in plotted_traces(response.context["charts"][1])}
    assert added["Add News"]["y"][3] == pytest.approx(2.0)


def test_timeline_points_pool_platforms_by_slates(rolled_up: Study) -> None:
    points = timeline_points(rolled_up, start=DAY, end=DAY)
    bridging = next(p for p in points if p.arm_slug == "uprank_bridging")
    assert bridging.slates == 3  # twitter x2 (one timed out) + reddit
    assert bridging.nrc_mean == pytest.approx((0.2 + 0.9) / 2)


def test_timelines_read_rollups_not_the_slate_log(
    researcher_client: Client, rolled_up: Study, django_assert_max_num_queries: Any
) -> None:
    Slate.objects.all().delete()
    with django_assert_max_num_queries(12) as captured:
        response = researcher_client.get("/research/ranking/timelines/", {"study": rolled_up.slug, **RANGE})
    assert response.status_code == 200
    assert response.context["has_data"]
    assert not [q["sql"] for q in captured.captured_queries if "rankers_slate" in q["sql"]]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"start": "2024-13-01"}, "Enter a valid date."),
        ({"start": "2024-10-05", "end": "2024-10-01"}, "The start date must not be after the end date."),
        ({"start": "2020-01-01", "end": "2024-10-01"}, "Choose a range of at most 731 days."),
        ({"platform": "myspace"}, "Select a valid choice."),
    ],
)
def test_bad_filters_show_a_form_error_on_the_page(
    researcher_client: Client, study: Study, query: dict[str, str], message: str
) -> None:
    response = researcher_client.get("/research/ranking/timelines/", {"study": study.slug, **query})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert 'class="errorlist' in response.content.decode()


def test_a_range_without_slates_says_so(researcher_client: Client, study: Study) -> None:
    response = researcher_client.get("/research/ranking/timelines/", {"study": study.slug, **RANGE})
    assert response.status_code == 200
    assert "No slates were logged in this range." in response.content.decode()


# --- delivery -------------------------------------------------------------------------------------


def test_delivery_shows_share_intervened_fallbacks_and_latency_against_the_budget(
    researcher_client: Client, rolled_up: Study
) -> None:
    response = researcher_client.get("/research/ranking/delivery/", {"study": rolled_up.slug, **RANGE})
    assert response.status_code == 200
    assert response.context["hold_ms"] == 500
    assert response.context["reasons"] == ["timeout"]
    lines = {line["row"].arm_slug: line for line in response.context["table"]}
    assert list(lines) == ["control", "uprank_bridging", "add_news"]  # the study's arm order
    bridging = lines["uprank_bridging"]["row"]
    assert (bridging.slates, bridging.slates_intervened, bridging.fallbacks) == (5, 4, {"timeout": 1})
    assert bridging.ranker_p95_ms == pytest.approx(30.0)
    assert bridging.served_p95_ms == 502.5  # the 502 ms bucket's midpoint, from the post-baseline histogram
    page = response.content.decode()
    assert "held until 500 ms" in page
    assert 'id="delivery-latency"' in page
    assert re.search(r'data-arm="uprank_bridging">\s*<td>Uprank Bridging</td>\s*<td>5</td>\s*<td>80%</td>', page)


def test_a_ranker_over_the_budget_is_flagged(researcher_client: Client, study: Study) -> None:
    log_slate(study, DAY, "uprank_bridging", ranker_ms=900.0)
    rollup_day(day=DAY)
    response = researcher_client.get("/research/ranking/delivery/", {"study": study.slug, **RANGE})
    assert 'class="bad" title="over the 500 ms budget"' in response.content.decode()


def test_delivery_counts_per_arm_the_slates_whose_insertions_were_trimmed_to_the_caps(
    researcher_client: Client, study: Study
) -> None:
    log_slate(study, DAY, "add_news", capped=True, n_added=2, returned_ids=["x", "a", "y", "b", "c", "d"])
    log_slate(study, DAY, "add_news", n_added=1, returned_ids=["x", "a", "b", "c", "d"])
    log_slate(study, DAY, "control", returned_ids=["a", "b", "c", "d"])
    rollup_day(day=DAY)

    response = researcher_client.get("/research/ranking/delivery/", {"study": study.slug, **RANGE})

    lines = {line["row"].arm_slug: line["row"] for line in response.context["table"]}
    assert (lines["add_news"].capped_slates, lines["control"].capped_slates) == (1, 0)
    page = response.content.decode()
    assert re.search(r'data-arm="add_news">.*?<td data-col="capped">1</td>', page, re.S)
    assert re.search(r'data-arm="control">.*?<td data-col="capped">0</td>', page, re.S)


# --- slate inspector ------------------------------------------------------------------------------


def test_the_inspector_says_when_a_slate_was_capped(pi_client: Client, study: Study) -> None:
    capped = log_slate(study, DAY, "add_news", capped=True, n_added=2, returned_ids=["x", "a", "y", "b", "c", "d"])
    within = log_slate(study, DAY, "add_news", n_added=1, returned_ids=["x", "a", "b", "c", "d"])

    capped_page = pi_client.get(f"/research/ranking/slates/{capped.id}/").content.decode()
    within_page = pi_client.get(f"/research/ranking/slates/{within.id}/").content.decode()

    assert "intervened, capped: the ranker inserted or removed more than the arm's caps" in capped_page
    assert "capped" not in within_page


@pytest.fixture
def logged_slate(study: Study) -> Slate:
    texts = {"a": "Alpha post", "b": "Bravo post", "c": "Charlie post", "n": "News item"}
    for item_id, text in texts.items():
        ContentItem.objects.create(platform="twitter", item_id=item_id, text_hash=text_hash(text), text=text)
    ContentItem.objects.create(
        platform="twitter", item_id="a", text_hash=text_hash("Alpha, edited"), text="Alpha, edited"
    )
    return log_slate(
        study,
        DAY,
        "diverse_approval",
        original_ids=["a", "b", "c"],
        original_hashes=[text_hash(texts[i]) for i in "abc"],
        returned_ids=["n", "c", "a"],
        added_ids=["n"],
        deleted_ids=["b"],
        n_added=1,
        n_deleted=1,
    )


def test_a_pi_sees_one_slate_before_and_after_with_its_text(pi_client: Client, logged_slate: Slate) -> None:
    response = pi_client.get(f"/research/ranking/slates/{logged_slate.id}/")
    assert response.status_code == 200
    page = response.content.decode()
    original = page[page.index('id="original-order"') : page.index('id="returned-order"')]
    returned = page[page.index('id="returned-order"') :]
    assert re.findall(r'data-item="(\w+)" data-status="(\w+)"', original) == [
        ("a", "kept"),
        ("b", "deleted"),
        ("c", "kept"),
    ]
    assert re.findall(r'data-item="(\w+)" data-status="(\w+)"', returned) == [
        ("n", "added"),
        ("c", "kept"),
        ("a", "kept"),
    ]
    assert "Alpha post" in page  # the version that was logged, not the later edit
    assert "Alpha, edited" not in page
    assert "News item" in page
    assert "▲ 1" in returned  # c moved from 3rd to 2nd


def test_read_only_researchers_cannot_see_slate_content(researcher_client: Client, logged_slate: Slate) -> None:
    response = researcher_client.get(f"/research/ranking/slates/{logged_slate.id}/")
    assert response.status_code == 403
    assert b"Alpha post" not in response.content


def test_an_unknown_slate_is_not_found(pi_client: Client, study: Study) -> None:
    assert pi_client.get("/research/ranking/slates/999999/").status_code == 404


def test_the_lookup_box_opens_the_slate(pi_client: Client) -> None:
    assert pi_client.get("/research/ranking/slates/", {"id": "#42"})["Location"] == "/research/ranking/slates/42/"
    assert pi_client.get("/research/ranking/slates/", {"id": "x"})["Location"] == "/research/ranking/delivery/"


@pytest.mark.parametrize("typed", ["\u0664\u0662", "\u00b2", "\uff14\uff12", "9" * 40, "-1", "4 2"])
def test_the_lookup_box_sends_ids_that_are_not_plain_numbers_back_to_delivery(pi_client: Client, typed: str) -> None:
    response = pi_client.get("/research/ranking/slates/", {"id": typed})

    assert response.status_code == 302
    assert response["Location"] == "/research/ranking/delivery/"


def test_a_slate_id_past_the_database_range_is_not_found(pi_client: Client, study: Study) -> None:
    assert pi_client.get(f"/research/ranking/slates/{'9' * 30}/").status_code == 404


def test_slate_orders_mark_moves_additions_and_deletions() -> None:
    original, returned = slate_orders(["a", "b", "c"], ["c", "x", "a"])
    assert [(e.item_id, e.status, e.moved_up) for e in original] == [
        ("a", "kept", -2),
        ("b", "deleted", None),
        ("c", "kept", 2),
    ]
    assert [(e.item_id, e.status, e.before, e.after) for e in returned] == [
        ("c", "kept", 3, 1),
        ("x", "added", None, 2),
        ("a", "kept", 1, 3),
    ]


def test_delivery_names_the_baseline_scorer_as_a_baseline(
    researcher_client: Client, rolled_up: Study, settings
) -> None:
    settings.PRC_SCORER_BACKEND = "baseline"
    page = researcher_client.get("/research/ranking/delivery/", {"study": rolled_up.slug, **RANGE}).content.decode()
    assert re.search(r'<p id="scorer" class="note bad">.*Baseline scorer', page, re.DOTALL)
    assert "not the classifiers the paper" in page


def test_delivery_names_a_real_scorer_without_the_baseline_warning(
    researcher_client: Client, rolled_up: Study, settings
) -> None:
    settings.PRC_SCORER_BACKEND = "transformers"
    page = researcher_client.get("/research/ranking/delivery/", {"study": rolled_up.slug, **RANGE}).content.decode()
    assert '<p id="scorer" class="note">' in page
    assert "Local transformers classifier" in page
