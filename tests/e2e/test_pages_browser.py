"""Real browser walks (Debian chromium through Playwright) over a live server seeded with the demo study."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from participants.models import Assignment, Participant
from tests.demo import seed_small_demo
from tests.threads import run_at_once

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo() -> None:
    # In a thread of its own: the rehearsal runs an event loop, and Playwright's is running in this one.
    run_at_once(1, lambda _i: seed_small_demo())


def test_researcher_logs_into_the_admin_and_sees_the_funnel_table_and_chart(
    live_server: object, page: Page, demo: None
) -> None:
    page.goto(f"{live_server}/admin/")
    page.fill("#id_username", "reader")
    page.fill("#id_password", "prc-demo-pass")
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_contain_text("PRC research platform")
    expect(page.get_by_role("link", name="Participants").first).to_be_visible()

    page.get_by_role("link", name="Research dashboards").click()

    expect(page).to_have_url(f"{live_server}/research/funnel/")
    expect(page.get_by_role("heading", name="Recruitment funnel · PRC demo")).to_be_visible()
    expect(page.locator("#funnel-table tbody tr")).to_have_count(3)  # three vendors: every arrival comes through one
    expect(page.locator("#funnel-table tfoot tr td").first).to_have_text("Total")
    expect(page.locator("#consort-table tbody tr")).to_have_count(6)
    # plotly.js ran in the browser: the chart's SVG exists, with a bar trace per arm.
    expect(page.locator("#enrolment-chart .main-svg").first).to_be_visible()
    expect(page.locator("#enrolment-chart .barlayer .trace").first).to_be_attached()


def test_researcher_sees_a_form_error_for_a_bad_date(live_server: object, page: Page, demo: None) -> None:
    page.goto(f"{live_server}/admin/login/?next=/research/funnel/%3Fstart%3D2025-02-30")
    page.fill("#id_username", "pi")
    page.fill("#id_password", "prc-demo-pass")
    page.click("input[type=submit]")

    expect(page.locator(".errorlist")).to_contain_text("Enter a valid date.")
    expect(page.locator("#funnel-table")).to_have_count(0)


def test_participant_walks_from_the_vendor_link_to_the_status_page(live_server: object, page: Page, demo: None) -> None:
    # The demo study is seeded as running, and running studies still take signups.
    page.goto(f"{live_server}/join/rep-data/?pid=browser-walk-1")
    page.get_by_role("link", name="Start").click()

    page.check("input[name=device][value=laptop]")
    page.check("input[name=chrome][value=yes]")
    page.check("input[name=platforms][value=facebook]")
    page.fill("input[name=desktop_share]", "60")
    page.check("input[name=party][value=independent]")
    page.check("input[name=interest][value=yes]")
    page.get_by_role("button", name="Continue").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Informed consent")
    for checkbox in page.locator("input[type=checkbox]").all():
        checkbox.check()
    page.get_by_role("button", name="I agree").click()

    expect(page.locator("[data-testid=enrolment-code]")).to_be_visible()
    page.locator("[data-testid=status-link]").click()

    participant = Participant.objects.get(source__slug="rep-data", vendor_pid="browser-walk-1")
    expect(page.get_by_text(participant.public_id)).to_be_visible()
    expect(page.get_by_role("link", name="Withdraw from the study")).to_be_visible()
    assert participant.consented_at is not None
    assert Assignment.objects.filter(participant=participant).exists()
