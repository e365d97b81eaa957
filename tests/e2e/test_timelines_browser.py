"""The ranking timelines in a real browser (Debian chromium through Playwright) against a live server."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth.models import Group, User
from playwright.sync_api import Page, expect

from participants.models import Study
from participants.roles import READER
from rankers.models import Slate
from rankers.rollups import rollup_day
from tests.factories import StudyFactory, paper_arms

PASSWORD = "timelines-browser-pass"
FIRST_DAY = dt.date(2024, 10, 1)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def study_with_rollups() -> Study:
    """Ten days of slates for three of the six paper arms on two platforms, rolled up."""
    study = StudyFactory(name="Browser study", status=Study.Status.RUNNING, timezone="UTC")
    paper_arms(study)
    reader = User.objects.create_user("timelines-reader", password=PASSWORD, is_staff=True)
    reader.groups.add(Group.objects.get_or_create(name=READER)[0])
    for n in range(10):
        day = FIRST_DAY + dt.timedelta(days=n)
        served_at = dt.datetime.combine(day, dt.time(15), tzinfo=dt.UTC)
        for arm, nrc, added in (("control", 0.0, 0), ("uprank_bridging", 0.3, 0), ("add_news", 0.02, 2)):
            for platform in ("twitter", "reddit"):
                Slate.objects.create(
                    study_id=study.id,
                    served_at=served_at,
                    participant_id="p_browser00000001",
                    arm=arm,
                    effective_arm=arm,
                    ranker_key=arm,
                    platform=platform,
                    content_type="post",
                    served_ms=501.0,
                    ranker_ms=25.0,
                    intervention_on=True,
                    nrc=nrc + 0.01 * n,
                    n_added=added,
                )
        rollup_day(day=day)
    return study


def test_researcher_logs_in_and_sees_one_timeline_trace_per_arm(
    live_server: object, page: Page, study_with_rollups: Study
) -> None:
    study = study_with_rollups
    query = f"study={study.slug}%26start=2024-09-29%26end=2024-10-12"
    page.goto(f"{live_server}/admin/login/?next=/research/ranking/timelines/%3F{query}")
    page.fill("#id_username", "timelines-reader")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    expect(page.get_by_role("heading", name="What each arm did to feeds · Browser study")).to_be_visible()
    expect(page.get_by_role("link", name="Timelines")).to_have_attribute("aria-current", "page")
    arm_names = list(study.arms.order_by("id").values_list("name", flat=True))
    assert len(arm_names) == 6
    for chart in ("timeline-nrc_mean", "timeline-added_mean", "timeline-deleted_mean"):
        # plotly.js (served by us, not a CDN) drew the chart: an SVG with one line per arm.
        expect(page.locator(f"#{chart} .main-svg").first).to_be_visible()
        expect(page.locator(f"#{chart} .scatterlayer .trace")).to_have_count(6)
        names = page.evaluate(f"document.getElementById('{chart}').data.map(trace => trace.name)")
        assert names == arm_names
    expect(page.locator("#timeline-nrc_mean .legendtext")).to_have_count(6)

    # Narrow to one platform: the page reloads with the filter applied and the same arms.
    page.select_option("#id_platform", "reddit")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"platform=reddit"))
    expect(page.locator("#timeline-added_mean .scatterlayer .trace")).to_have_count(6)
    added = page.evaluate(
        "document.getElementById('timeline-added_mean').data.find(t => t.name === 'Add News').y.filter(v => v !== null)"
    )
    assert added == [2] * 10


def test_a_bad_date_shows_a_form_error_in_the_browser(
    live_server: object, page: Page, study_with_rollups: Study
) -> None:
    page.goto(f"{live_server}/admin/login/?next=/research/ranking/timelines/%3Fstart%3D2024-02-30")
    page.fill("#id_username", "timelines-reader")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    expect(page.locator(".errorlist")).to_contain_text("Enter a valid date.")
    expect(page.locator(".js-plotly-plot")).to_have_count(0)
