"""The content health page in a real browser (Debian chromium through Playwright) against a live server."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group, User
from playwright.sync_api import Page, expect

from participants.roles import READER
from rankers.content import services
from rankers.content.models import Connector, ContentSource

PASSWORD = "content-browser-pass"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def source(name: str, lean: str, posted_hours_ago: list[float]) -> ContentSource:
    row = ContentSource.objects.create(
        name=name, platform="reddit", kind="subreddit", connector=Connector.DATASET, location="", lean=lean
    )
    now = dt.datetime.now(dt.UTC)
    lines = "".join(
        f'{{"id": "{name}-{n}", "url": "https://www.reddit.com/r/x/comments/{name}{n}/", "title": "Post {n}", '
        f'"createdAt": "{(now - dt.timedelta(hours=h)).isoformat()}"}}\n'
        for n, h in enumerate(posted_hours_ago)
    )
    services.fetch_source(source_id=row.pk, data=lines.encode())
    return row


def test_researcher_sees_pools_by_lean_and_a_warning_for_the_stale_source(live_server: object, page: Page) -> None:
    reader = User.objects.create_user("content-reader", password=PASSWORD, is_staff=True)
    reader.groups.add(Group.objects.get_or_create(name=READER)[0])
    fresh = source("freshleft", "left", [1, 2, 3])
    stale = source("quietright", "right", [80])

    page.goto(f"{live_server}/admin/login/?next=/research/ranking/content/")
    page.fill("#id_username", "content-reader")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    expect(page.get_by_role("heading", name="Content inventory health")).to_be_visible()
    expect(page.get_by_role("link", name="Content")).to_have_attribute("aria-current", "page")
    warning = page.get_by_role("alert")
    expect(warning).to_contain_text("1 active source stale")
    expect(warning).to_contain_text("quietright (reddit): newest post is 80 h old")
    expect(page.locator(f'#source-table tr[data-source="{stale.pk}"]')).to_have_class("stale")
    expect(page.locator(f'#source-table tr[data-source="{fresh.pk}"] td[data-col="stale"]')).to_have_text("")

    # plotly.js drew both charts; the pool chart stacks the three fresh left posts on Reddit.
    for chart in ("content-pools", "content-ages"):
        expect(page.locator(f"#{chart} .main-svg").first).to_be_visible()
    left = page.evaluate("document.getElementById('content-pools').data.find(t => t.name === 'Left').y")
    assert left == [0, 3, 0]
    ages = page.evaluate("document.getElementById('content-ages').data[0].x")
    assert len(ages) == 2
    assert max(ages) > 79
