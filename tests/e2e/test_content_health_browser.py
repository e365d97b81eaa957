"""The content health page in a real browser (Debian chromium through Playwright) against a live server."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone
from playwright.sync_api import Page, expect

from participants.roles import READER
from rankers.content import services
from rankers.content.inventory import candidate_row
from rankers.content.models import CandidatePool, Connector, ContentSource
from rankers.plugins.base import Candidate

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
    warning = page.locator("#stale-warning")
    expect(warning).to_have_attribute("role", "alert")
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


def test_researcher_sees_each_inserting_arms_pool_and_a_warning_when_it_is_stale(
    live_server: object, page: Page
) -> None:
    reader = User.objects.create_user("arm-reader", password=PASSWORD, is_staff=True)
    reader.groups.add(Group.objects.get_or_create(name=READER)[0])
    now = timezone.now()
    posts = [
        Candidate(id=f"prc-{i}", url=f"https://n.example.org/{i}", source_id=1, posted_at=now - dt.timedelta(hours=i))
        for i in range(1, 4)
    ]
    for ranker_key, built_h in (("add_news", 10), ("diverse_approval", 1)):
        CandidatePool.objects.create(
            ranker_key=ranker_key, platform="reddit", built_at=now - dt.timedelta(hours=built_h),
            newest_post_at=posts[0].posted_at, candidates=[candidate_row(c) for c in posts], size=3,
        )  # fmt: skip

    page.goto(f"{live_server}/admin/login/?next=/research/ranking/content/")
    page.fill("#id_username", "arm-reader")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    expect(page.get_by_role("heading", name="Inserting arms")).to_be_visible()
    warning = page.locator("#arm-warning")
    expect(warning).to_have_attribute("role", "alert")
    expect(warning).to_contain_text("add_news on reddit: pool not rebuilt for 10 h")
    expect(warning).not_to_contain_text("diverse_approval on reddit")
    healthy = page.locator('#arm-table tr[data-arm="diverse_approval"][data-platform="reddit"]')
    expect(healthy.locator('td[data-col="fresh"]')).to_have_text("3")
    expect(healthy.locator('td[data-col="coverage"]')).to_have_text("global pool")
    expect(healthy).not_to_have_class("stale")
    expect(page.locator('#arm-table tr[data-arm="add_news"][data-platform="reddit"]')).to_have_class("stale")
