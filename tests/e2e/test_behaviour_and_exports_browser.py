"""The behaviour gap page and the export page in a real browser (chromium through Playwright), live server."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from playwright.sync_api import Page, expect

from participants import events
from participants.models import BehaviourEvent, Study
from participants.roles import PI, READER
from tests.factories import ParticipantFactory, StudyFactory

PASSWORD = "behaviour-browser-pass"
FIRST_DAY = dt.date(2024, 10, 1)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def study_with_a_lost_stream() -> Study:
    """Fourteen days of Facebook and Reddit views; Facebook's stop on day 10 with extension 2.0.0."""
    study = StudyFactory(name="Gap study", status=Study.Status.RUNNING, timezone="UTC")
    participant = ParticipantFactory(study=study)
    reader = User.objects.create_user("behaviour-reader", password=PASSWORD, is_staff=True)
    reader.groups.add(Group.objects.get_or_create(name=READER)[0])
    rows = []
    for n in range(14):
        day = FIRST_DAY + dt.timedelta(days=n)
        for platform, version in (("facebook", "2.0.0"), ("reddit", "1.9.0")):
            if platform == "facebook" and n >= 9:
                continue
            for i in range(30):
                rows.append(
                    BehaviourEvent(
                        occurred_at=dt.datetime.combine(day, dt.time(12, i), tzinfo=dt.UTC),
                        participant_id=participant.pk,
                        study_id=study.pk,
                        batch_id=1,
                        platform=platform,
                        kind="view",
                        item_id=f"{platform}-{n}-{i}",
                        extension_version=version,
                    )
                )
    BehaviourEvent.objects.bulk_create(rows)
    for n in range(14):
        events.rollup_behaviour_day(study=study, day=FIRST_DAY + dt.timedelta(days=n))
    return study


def test_researcher_sees_the_platform_and_version_whose_events_dropped(
    live_server: object, page: Page, study_with_a_lost_stream: Study
) -> None:
    query = f"study={study_with_a_lost_stream.slug}%26start=2024-10-05%26end=2024-10-14"
    page.goto(f"{live_server}/admin/login/?next=/research/behaviour/%3F{query}")
    page.fill("#id_username", "behaviour-reader")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    expect(page.get_by_role("heading", name="Behaviour data · Gap study")).to_be_visible()
    expect(page.get_by_role("link", name="Behaviour")).to_have_attribute("aria-current", "page")
    gaps = page.get_by_test_id("gap")
    expect(gaps).to_have_count(2)
    expect(gaps.nth(0)).to_contain_text("facebook")
    expect(gaps.nth(1)).to_contain_text("extension 2.0.0")
    for row in range(2):
        expect(gaps.nth(row)).to_contain_text("2024-10-10")
        expect(gaps.nth(row)).to_contain_text("2024-10-14")
    expect(page.locator("#stream-table")).to_contain_text("reddit")

    # Before the drop there is nothing to flag.
    page.fill("#id_end", "2024-10-09")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_test_id("no-gaps")).to_be_visible()


def test_a_pi_exports_in_one_click_and_waits_on_the_progress_page_for_the_zip(
    live_server: object, page: Page, study_with_a_lost_stream: Study, settings: Any, tmp_path: Path
) -> None:
    settings.PRC_EXPORT_DIR = str(tmp_path / "exports")
    pi = User.objects.create_user("export-pi", password=PASSWORD, is_staff=True)
    pi.groups.add(Group.objects.get(name=PI))
    page.goto(f"{live_server}/admin/login/?next=/research/exports/")
    page.fill("#id_username", "export-pi")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    page.select_option("#id_study", study_with_a_lost_stream.slug)
    page.select_option("#id_format", "csv")
    expect(page.get_by_label("Daily behaviour panel")).to_be_checked()
    page.get_by_role("button", name="Export").click()

    expect(page.get_by_role("heading", name=re.compile(r"Export \d+ · Gap study"))).to_be_visible()
    expect(page.get_by_test_id("export-status")).to_have_text("done")
    expect(page.locator("#export-bar")).to_have_attribute("value", "8")
    with page.expect_download() as download:
        page.get_by_test_id("export-download").click()
    path = download.value.path()
    names = zipfile.ZipFile(path).namelist()
    assert "daily_panel.csv" in names
    assert "codebook.md" in names
