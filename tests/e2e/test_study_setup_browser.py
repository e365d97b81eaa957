"""Study setup in a real browser: from an empty database to a participant on the install page, using only pages.

Set ``PRC_SCREENSHOT_DIR`` to keep screenshots of the launch checklist and the link builder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from playwright.sync_api import Page, expect

from participants.models import Participant, Study
from participants.roles import PI, READER, create_roles
from surveys.library import write_instruments
from surveys.models import Instrument, Question
from tests.factories import ArmFactory, ConsentDocumentFactory, ParticipantFactory, SourceFactory, StudyFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "setup-pass-123"


@pytest.fixture
def visitor(page: Page) -> Page:
    """A second page in the same browser with its own cookies: a participant beside the researcher."""
    browser = page.context.browser
    assert browser is not None
    return browser.new_context().new_page()


@pytest.fixture
def roles() -> dict[str, Group]:
    # What `migrate` leaves in an empty database: the roles and (surveys/0004) the paper's instruments. Written
    # by the functions the migrations call, because a transactional test starts from a flushed database.
    write_instruments(Instrument, Question)
    return create_roles()


def researcher(username: str, role: str) -> User:
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


def sign_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_contain_text("PRC research platform")


def screenshot(page: Page, name: str) -> None:
    folder = os.environ.get("PRC_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def field_error(page: Page, field: str) -> str:
    """The error the admin shows next to one field (the row that holds the field's input)."""
    return page.locator(f".form-row.field-{field} .errorlist").inner_text()


def open_checklist(page: Page, base: str, study: str) -> None:
    page.goto(f"{base}/admin/participants/study/")
    page.get_by_role("row").filter(has_text=study).get_by_role("link", name="Checklist and status").click()
    expect(page.get_by_role("heading", name=f"Launch checklist · {study}")).to_be_visible()


def add_arm(page: Page, index: int, name: str, slug: str, ranker: str, *, control: bool = False) -> None:
    page.locator(".arms-table .add-row a").click()
    page.fill(f"#id_arms-{index}-name", name)
    page.fill(f"#id_arms-{index}-slug", slug)
    page.select_option(f"#id_arms-{index}-ranker_key", ranker)
    if control:
        page.check(f"#id_arms-{index}-is_control")


def test_pi_sets_up_a_two_arm_study_from_an_empty_database_to_a_participant_on_the_install_page(
    live_server: object, page: Page, visitor: Page, roles: dict[str, Group]
) -> None:
    base = str(live_server)
    researcher("pi", PI)
    sign_in(page, base, "pi")

    # The study and its two arms; the time zone is a choice, the ranker keys too.
    page.goto(f"{base}/admin/participants/study/add/")
    page.locator("#id_name").press_sequentially("Feeds 2027")  # the admin fills the slug as you type
    expect(page.locator("#id_slug")).to_have_value("feeds-2027")
    expect(page.locator("select#id_timezone")).to_have_value("America/New_York")
    add_arm(page, 0, "Control", "control", "control", control=True)
    add_arm(page, 1, "Uprank bridging", "bridging", "uprank_bridging")
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    expect(page.locator(".field-arm_schedule")).to_contain_text("Reddit: never intervenes on this platform")

    # Not ready yet: the checklist says what is missing and Recruiting is refused with the reasons.
    open_checklist(page, base, "Feeds 2027")
    expect(page.get_by_test_id("checklist").locator("li.fail")).to_have_count(3)
    page.get_by_role("button", name="Start recruiting").click()
    expect(page.locator(".messagelist .error")).to_contain_text("Add a consent document.")
    expect(page.locator(".messagelist .error")).to_contain_text("Add a recruitment source")
    expect(page.locator(".messagelist .error")).to_contain_text("add an active baseline wave")
    expect(page.get_by_test_id("study-status")).to_have_text("Draft")
    screenshot(page, "checklist-blocked")

    # A consent document and a Prolific source with its redirect links.
    page.goto(f"{base}/admin/participants/consentdocument/add/")
    page.select_option("#id_study", label="Feeds 2027")
    page.fill("#id_version", "2027-01")
    page.fill("#id_text", "You agree to install the extension and let it reorder your feeds.")
    page.fill("#id_questions", '["I am 18 or older", "I agree to take part"]')
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    expect(page.locator("#result_list")).to_contain_text("2027-01")

    page.goto(f"{base}/admin/participants/recruitmentsource/add/")
    page.select_option("#id_study", label="Feeds 2027")
    page.locator("#id_name").press_sequentially("Prolific")
    page.select_option("#id_vendor", "prolific")
    page.fill("#id_pid_param", "PROLIFIC_PID")
    page.fill("#id_complete_url", "https://app.prolific.com/submissions/complete?cc=C0MPL&pid={pid}")
    page.fill("#id_screenout_url", "https://app.prolific.com/submissions/complete?cc=SCR33N&pid={pid}")
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    vendor_link = page.locator("#vendor-link").input_value()
    assert vendor_link == f"{base}/join/feeds-2027/prolific/?PROLIFIC_PID={{{{%PROLIFIC_PID%}}}}"
    screenshot(page, "link-builder")

    # The baseline survey wave, on the paper's instrument that `migrate` loaded: inclusion waits for it.
    page.goto(f"{base}/admin/surveys/wave/add/")
    page.select_option("#id_study", label="Feeds 2027")
    page.fill("#id_slug", "baseline")
    page.fill("#id_name", "Baseline survey")
    page.select_option("#id_kind", "baseline")
    page.select_option("#id_instrument", label="PRC baseline survey")
    page.fill("#id_opens_after_days", "0")
    page.fill("#id_open_days", "14")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")

    # Every check passes: Recruiting is allowed.
    open_checklist(page, base, "Feeds 2027")
    expect(page.get_by_test_id("checklist").locator("li.ok")).to_have_count(8)
    expect(page.get_by_test_id("check-lines")).to_contain_text("Baseline survey (baseline, prc-baseline; opens at")
    screenshot(page, "checklist-ready")
    page.get_by_role("button", name="Start recruiting").click()
    expect(page.locator(".messagelist")).to_contain_text("Feeds 2027 is now recruiting.")
    expect(page.get_by_test_id("study-status")).to_have_text("Recruiting")

    # A participant arrives with the link the vendor filled in, and reaches the install page.
    visitor.goto(vendor_link.replace("{{%PROLIFIC_PID%}}", "5f00c0ffee"))
    visitor.get_by_role("link", name="Start").click()
    visitor.check("input[name=device][value=laptop]")
    visitor.check("input[name=chrome][value=yes]")
    visitor.check("input[name=platforms][value=facebook]")
    visitor.fill("input[name=desktop_share]", "60")
    visitor.check("input[name=party][value=independent]")
    visitor.check("input[name=interest][value=yes]")
    visitor.get_by_role("button", name="Continue").click()
    expect(visitor.locator("p.help")).to_contain_text("Version 2027-01")
    for checkbox in visitor.locator("input[type=checkbox]").all():
        checkbox.check()
    visitor.get_by_role("button", name="I agree").click()

    expect(visitor.get_by_role("heading", level=1)).to_have_text("Install the extension")
    expect(visitor.get_by_test_id("enrolment-code")).to_be_visible()
    participant = Participant.objects.get(vendor_pid="5f00c0ffee")
    assert participant.assignment.arm.slug in ("control", "bridging")
    assert participant.is_test is False


def test_bad_values_are_refused_next_to_their_fields_in_the_browser(
    live_server: object, page: Page, roles: dict[str, Group]
) -> None:
    base = str(live_server)
    study = StudyFactory(name="Typo study", status=Study.Status.DRAFT)
    researcher("pi", PI)
    sign_in(page, base, "pi")

    page.goto(f"{base}/admin/participants/study/{study.pk}/change/")
    page.fill("#id_screener_rules", '{"min_desktop_share": "thirty"}')
    page.fill("#id_strata_fields", '["party", "age"]')
    page.click("input[name=_save]")
    assert "must be a whole number from 0 to 100" in field_error(page, "screener_rules")
    assert "Unknown screener questions: age." in field_error(page, "strata_fields")
    expect(page.locator("select#id_timezone option[value='New York']")).to_have_count(0)

    page.goto(f"{base}/admin/participants/consentdocument/add/")
    page.select_option("#id_study", label="Typo study")
    page.fill("#id_version", "1")
    page.fill("#id_text", "Text.")
    page.fill("#id_questions", '"I agree to take part"')
    page.click("input[name=_save]")
    assert "not a single string" in field_error(page, "questions")

    page.goto(f"{base}/admin/participants/recruitmentsource/add/")
    page.select_option("#id_study", label="Typo study")
    page.fill("#id_name", "Vendor")
    page.fill("#id_complete_url", "https://vendor.example/complete")
    page.click("input[name=_save]")
    assert "The link must contain {pid}" in field_error(page, "complete_url")
    assert not study.sources.exists()


def test_a_randomized_study_keeps_its_design_and_cannot_return_to_draft(
    live_server: object, page: Page, roles: dict[str, Group]
) -> None:
    base = str(live_server)
    study = StudyFactory(name="Locked study", status=Study.Status.RECRUITING)
    control = ArmFactory(study=study, slug="control", ranker_key="control", is_control=True)
    ArmFactory(study=study, slug="bridging", ranker_key="uprank_bridging")
    ConsentDocumentFactory(study=study)
    someone = ParticipantFactory(study=study, source=SourceFactory(study=study))
    someone.assignment = control.assignments.create(participant=someone, stratum="all", position=0)
    researcher("pi", PI)
    sign_in(page, base, "pi")

    open_checklist(page, base, "Locked study")
    expect(page.locator("#refusal-draft")).to_contain_text("Participants have been randomized")
    to_draft = page.locator("form.transition").filter(has=page.get_by_role("button", name="Return to draft"))
    to_draft.get_by_label("Reason").fill("change the weights")
    to_draft.get_by_role("button").click()
    expect(page.locator(".messagelist .error")).to_contain_text("the study cannot return to draft")
    expect(page.get_by_test_id("study-status")).to_have_text("Recruiting")

    page.goto(f"{base}/admin/participants/study/{study.pk}/change/")
    expect(page.locator("#id_arms-0-allocation_weight")).to_have_count(0)
    expect(page.locator("#id_arms-0-ranker_key")).to_have_count(0)
    expect(page.locator("#id_arms-0-starts_reddit")).to_be_visible()  # a deliberate change stays possible


def test_the_try_it_link_makes_a_test_participant_the_funnel_leaves_out(
    live_server: object, page: Page, visitor: Page, roles: dict[str, Group]
) -> None:
    base = str(live_server)
    study = StudyFactory(name="Tried study", status=Study.Status.RECRUITING)
    ArmFactory(study=study, slug="control", ranker_key="control", is_control=True)
    ArmFactory(study=study, slug="bridging", ranker_key="uprank_bridging")
    ConsentDocumentFactory(study=study)
    source = SourceFactory(study=study, name="Cint", vendor="cint", pid_param="RID", signing_secret="shh")
    researcher("pi", PI)
    sign_in(page, base, "pi")

    page.goto(f"{base}/admin/participants/recruitmentsource/{source.pk}/change/")
    expect(page.locator("#vendor-link")).to_have_value(re.compile(r"\?RID=\[%RID%\]&sig=HMAC_SHA256_HEX$"))
    try_link = page.get_by_test_id("try-it").get_attribute("href")
    assert try_link
    visitor.goto(try_link)
    expect(visitor.get_by_role("link", name="Start")).to_be_visible()

    participant = Participant.objects.get()
    assert participant.is_test
    page.goto(f"{base}/research/funnel/?study={study.slug}")
    expect(page.locator('#funnel-table tfoot tr[data-source="Total"] td').nth(1)).to_have_text("0")
    table = page.locator("#funnel-table")
    assert table.evaluate("t => t.getBoundingClientRect().right") <= page.viewport_size["width"]  # type: ignore[index]


def test_every_participant_page_previews_in_the_browser(
    live_server: object, page: Page, roles: dict[str, Group]
) -> None:
    base = str(live_server)
    study = StudyFactory(name="Previewed study", status=Study.Status.DRAFT)
    ConsentDocumentFactory(study=study, questions=["I am 18 or older"])
    researcher("reader", READER)
    sign_in(page, base, "reader")

    page.goto(f"{base}/research/studies/{study.slug}/preview/landing/")
    for name, heading in [
        ("Screener", "A few questions"),
        ("Consent", "Informed consent"),
        ("Install", "Install the extension"),
        ("Status", "Your participation"),
        ("Landing", "A study about your social media feeds"),
    ]:
        page.get_by_test_id("preview-bar").get_by_role("link", name=name).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        expect(page.get_by_test_id("preview-bar")).to_contain_text("Preview of Previewed study")
    assert not Participant.objects.exists()


def test_a_read_only_researcher_cannot_filter_participants_by_email_in_the_url(
    live_server: object, page: Page, roles: dict[str, Group]
) -> None:
    base = str(live_server)
    ParticipantFactory(email="someone@example.org", study__status=Study.Status.RUNNING)
    researcher("reader", READER)
    sign_in(page, base, "reader")

    response = page.goto(f"{base}/admin/participants/participant/?email__iexact=someone@example.org")

    assert response is not None
    assert response.status == 400
    expect(page.locator("body")).not_to_contain_text("someone@example.org")
