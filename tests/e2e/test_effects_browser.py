"""The effects page in the real browser: blinded estimates with a confidence-interval chart, then a PI unblinds."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from playwright.sync_api import Page, expect

from participants.models import AuditEvent
from participants.roles import PI
from surveys import effects
from tests.factories import StudyFactory, paper_arms
from tests.surveys.test_effects import survey_two_waves
from tests.surveys.test_effects_daily import hand_built_panel

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_pi_sees_blinded_effects_with_a_chart_and_unblinds_them(live_server: object, page: Page) -> None:
    call_command("load_instruments", stdout=StringIO())
    study = StudyFactory(name="Effects study")
    paper_arms(study)
    survey_two_waves(study, per_arm=8)
    hand_built_panel(study, per_arm=3)  # daily behaviour: S1 in minutes and counts beside S3 in SDs
    effects.run_effects(study=study)
    pi = User.objects.create_user("pi-browser", password="pw-browser-1", is_staff=True)
    pi.groups.add(Group.objects.get(name=PI))

    page.goto(f"{live_server}/admin/login/?next=/research/effects/%3Fstudy%3D{study.slug}")
    page.fill("#id_username", "pi-browser")
    page.fill("#id_password", "pw-browser-1")
    page.click("input[type=submit]")

    expect(page.get_by_role("heading", name="Effects · Effects study")).to_be_visible()
    expect(page.locator("#blinding")).to_contain_text("Blinded")
    rows = page.locator("#effects-table tbody tr")
    expect(rows.first).to_contain_text("All treatment arms")
    expect(page.locator("#effects-table tbody tr[data-sample='uprank_bridging']")).to_have_count(0)
    # plotly.js drew the forest plots, one per unit, each on its own axis: markers with their confidence-interval bars.
    expect(page.locator("#effects-chart-sd .main-svg").first).to_be_visible()
    expect(page.locator("#effects-chart-sd .errorbar").first).to_be_attached()
    expect(page.locator("#effects-chart-sd .xtitle")).to_have_text(
        "Effect in control-group standard deviations (95% CI)"
    )
    expect(page.locator("#effects-chart-minutes .xtitle")).to_have_text("Effect in active minutes a day (95% CI)")
    expect(page.locator("#effects-chart-minutes .errorbar").first).to_be_attached()
    expect(page.locator("#effects-chart-counts .main-svg").first).to_be_visible()

    page.fill("#unblind-reason", "Endline closed; analysis plan allows it")
    page.get_by_role("button", name="Unblind per-arm estimates").click()

    expect(page.locator("#blinding")).to_contain_text("Unblinded by pi-browser")
    expect(page.locator("#effects-table tbody tr[data-sample='uprank_bridging']").first).to_be_visible()
    expect(page.locator("#unblind-form")).to_have_count(0)
    assert AuditEvent.objects.get(action="effects.unblinded").detail["reason"].startswith("Endline closed")
