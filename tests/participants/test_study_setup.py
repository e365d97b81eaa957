"""Study setup through the admin: validated settings, the launch checklist, status changes, the locked design."""

from __future__ import annotations

import datetime as dt
import html

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from participants import prereg
from participants.launch import launch_checklist
from participants.models import Arm, AuditEvent, ConsentDocument, PageCopy, Participant, RecruitmentSource, Study
from participants.roles import PI, READER, create_roles
from participants.study_status import StudyStatusError, change_study_status
from rankers.scoring import identity, readiness
from tests.factories import ArmFactory, ConsentDocumentFactory, StudyFactory, login
from tests.participants.conftest import give_consent, join, screen
from tests.participants.study_admin import (
    change_status,
    consent_form_admin,
    ready_study,
    source_form,
    study_form,
)

pytestmark = pytest.mark.django_db

STUDIES = "/admin/participants/study/"


@pytest.fixture(autouse=True)
def roles() -> dict[str, Group]:
    return create_roles()


@pytest.fixture
def pi() -> Client:
    return login("pi", PI)


def two_arms() -> list[dict[str, object]]:
    return [
        {"name": "Control", "slug": "control", "ranker_key": "control", "allocation_weight": 1, "is_control": True},
        {"name": "Bridging", "slug": "bridging", "ranker_key": "uprank_bridging", "allocation_weight": 1},
    ]


def text(response: object) -> str:
    return html.unescape(response.content.decode())  # type: ignore[attr-defined]


# --- 1. validated settings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"timezone": "New York"}, "Select a valid choice. New York is not one of the available choices."),
        ({"screener_rules": '{"min_desktop_share": "thirty"}'}, "“min_desktop_share” must be a whole number"),
        ({"screener_rules": '{"min_share": 30}'}, "Unknown rule(s): min_share."),
        ({"screener_rules": '{"allowed_devices": "laptop"}'}, "Expected a list of devices"),
        ({"screener_rules": '{"require_chrome": "yes"}'}, "“require_chrome” must be true or false"),
        ({"screener_rules": "[30]"}, "Expected a JSON object"),
        ({"strata_fields": '["party", "age"]'}, "Unknown screener questions: age."),
        ({"strata_fields": '"party"'}, "Expected a list of screener questions"),
    ],
)
def test_bad_study_settings_are_refused_with_a_message_next_to_the_field(
    pi: Client, changes: dict[str, str], message: str
) -> None:
    response = pi.post(f"{STUDIES}add/", study_form(arms=two_arms(), **changes))

    assert message in text(response)
    assert 'class="errorlist' in text(response)
    assert not Study.objects.exists()


def test_a_study_with_valid_settings_is_saved_with_its_arms(pi: Client) -> None:
    response = pi.post(f"{STUDIES}add/", study_form(arms=two_arms(), screener_rules='{"min_desktop_share": 40}'))

    assert response.status_code == 302, text(response)
    study = Study.objects.get()
    assert study.status == Study.Status.DRAFT
    assert study.screener_rules == {"min_desktop_share": 40}
    assert sorted(study.arms.values_list("ranker_key", flat=True)) == ["control", "uprank_bridging"]


def test_ranker_keys_are_a_choice_of_registered_rankers(pi: Client) -> None:
    arms = two_arms()
    arms[1]["ranker_key"] = "bridging_typo"

    response = pi.post(f"{STUDIES}add/", study_form(arms=arms))
    form_page = text(pi.get(f"{STUDIES}add/"))

    assert "Select a valid choice. bridging_typo is not one of the available choices." in text(response)
    assert '<option value="uprank_bridging">uprank_bridging</option>' in form_page
    assert 'name="arms-__prefix__-ranker_key"' in form_page
    assert "<select" in form_page


def test_external_ranker_needs_its_url_in_the_arm_settings(pi: Client) -> None:
    arms = two_arms()
    arms[1]["ranker_key"] = "external"

    response = pi.post(f"{STUDIES}add/", study_form(arms=arms))

    assert 'The external ranker needs {"url": "https://…/rank"}' in text(response)
    assert not Arm.objects.exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"complete_url": "https://vendor.example/done"}, "The link must contain {pid}"),
        ({"screenout_url": "https://vendor.example/so?id=PID"}, "The link must contain {pid}"),
        ({"pid_param": "rid & more"}, "A URL parameter name"),
    ],
)
def test_bad_source_settings_are_refused_with_a_message(pi: Client, changes: dict[str, str], message: str) -> None:
    study = StudyFactory(status=Study.Status.DRAFT)
    data = source_form(study=study.pk, name="Vendor", slug="vendor", **changes)

    response = pi.post("/admin/participants/recruitmentsource/add/", data)

    assert message in text(response)
    assert not RecruitmentSource.objects.exists()


def test_consent_questions_typed_as_a_plain_string_are_refused(pi: Client) -> None:
    study = StudyFactory(status=Study.Status.DRAFT)

    response = pi.post(
        "/admin/participants/consentdocument/add/", consent_form_admin(study, questions='"I agree to take part"')
    )
    saved = pi.post("/admin/participants/consentdocument/add/", consent_form_admin(study))

    assert "Expected a JSON list of statements, one checkbox each" in text(response)
    assert saved.status_code == 302
    assert ConsentDocument.objects.get().questions == ["I am 18 or older"]


def test_page_copy_keys_are_a_choice_of_the_participant_pages(pi: Client) -> None:
    study = StudyFactory(status=Study.Status.DRAFT)
    data = {"study": study.pk, "title": "Hi", "body": "Welcome."}

    refused = pi.post("/admin/participants/pagecopy/add/", {**data, "key": "landng"})
    saved = pi.post("/admin/participants/pagecopy/add/", {**data, "key": "landing"})

    assert "Select a valid choice. landng is not one of the available choices." in text(refused)
    assert saved.status_code == 302
    assert PageCopy.objects.get().key == "landing"


def test_consent_versions_are_shown_as_typed() -> None:
    document = ConsentDocumentFactory(version="v2")

    assert str(document) == f"{document.study.slug} consent v2"


# --- 2. launch checklist and the status service --------------------------------------------------


def test_checklist_lists_every_missing_piece_and_recruiting_is_refused_with_the_reason(pi: Client) -> None:
    study = StudyFactory(status=Study.Status.DRAFT, timezone="America/New_York")
    ArmFactory(study=study, ranker_key="control", is_control=False)

    page = text(pi.get(f"{STUDIES}{study.pk}/checklist/"))
    refused = change_status(pi, study, Study.Status.RECRUITING)

    for reason in (
        "Mark exactly one arm as control (now: none).",
        "Add a consent document.",
        "Add a recruitment source, or resume a paused one.",
    ):
        assert reason in page
        assert reason in text(refused)
    assert "The launch checklist does not pass yet." in text(refused)
    study.refresh_from_db()
    assert study.status == Study.Status.DRAFT
    assert not AuditEvent.objects.filter(action="study.status_changed").exists()


def test_checklist_passes_once_the_study_is_complete_and_recruiting_is_audited(pi: Client) -> None:
    study = ready_study()

    page = text(pi.get(f"{STUDIES}{study.pk}/checklist/"))
    response = change_status(pi, study, Study.Status.RECRUITING)

    assert "8 of 8 checks pass" in page
    assert f"{study.name} is now recruiting." in text(response)
    study.refresh_from_db()
    assert study.status == Study.Status.RECRUITING
    event = AuditEvent.objects.get(action="study.status_changed")
    assert (event.actor_label, event.detail["from"], event.detail["to"]) == ("pi", "draft", "recruiting")


def test_an_arm_without_a_scorer_it_needs_fails_the_checklist(pi: Client, settings: object) -> None:
    study = ready_study()
    settings.PRC_SCORER_BACKEND = "http"  # type: ignore[attr-defined]
    settings.PRC_SCORER_HTTP_URL = ""  # type: ignore[attr-defined]

    refused = change_status(pi, study, Study.Status.RECRUITING)

    assert "uprank_bridging needs attribute scores, but the http scorer backend needs PRC_SCORER_HTTP_URL" in text(
        refused
    )
    study.refresh_from_db()
    assert study.status == Study.Status.DRAFT


def test_a_source_saved_before_validation_with_a_bad_template_fails_the_checklist(pi: Client) -> None:
    study = ready_study()
    RecruitmentSource.objects.filter(study=study).update(complete_url="https://vendor.example/done")

    page = text(pi.get(f"{STUDIES}{study.pk}/checklist/"))

    assert "complete link: The link must contain {pid}" in page


def test_closing_and_reopening_are_audited_pi_actions_with_a_reason(pi: Client) -> None:
    study = ready_study(Study.Status.RUNNING)

    without_reason = change_status(pi, study, Study.Status.CLOSED)
    closed = change_status(pi, study, Study.Status.CLOSED, reason="Target sample reached")
    reopened = change_status(pi, study, Study.Status.RUNNING, reason="Vendor resent invitations")

    assert "Say why" in text(without_reason)
    assert "is now closed." in text(closed)
    assert "is now running." in text(reopened)
    events = AuditEvent.objects.filter(action="study.status_changed").order_by("at", "id")
    assert [(e.detail["to"], e.detail["reason"], e.actor_label) for e in events] == [
        ("closed", "Target sample reached", "pi"),
        ("running", "Vendor resent invitations", "pi"),
    ]


def test_a_read_only_researcher_sees_the_checklist_but_cannot_change_the_status() -> None:
    study = ready_study()
    reader = login("reader", READER)

    page = text(reader.get(f"{STUDIES}{study.pk}/checklist/"))
    response = reader.post(f"{STUDIES}{study.pk}/checklist/", {"to": "recruiting"})

    assert "8 of 8 checks pass" in page
    assert "Start recruiting" not in page
    assert response.status_code == 403
    study.refresh_from_db()
    assert study.status == Study.Status.DRAFT


def test_the_status_is_not_a_field_of_the_study_form(pi: Client) -> None:
    study = ready_study()

    pi.post(f"{STUDIES}{study.pk}/change/", {**study_form(study), "status": "recruiting"})

    study.refresh_from_db()
    assert study.status == Study.Status.DRAFT


# --- 3. the locked design ------------------------------------------------------------------------


def randomize_someone(study: Study, pid: str = "r-1") -> Participant:
    client = Client()
    source = study.sources.get()
    assert join(client, source, pid).status_code == 302
    screen(client)
    give_consent(client, study.consent_documents.get())
    participant = Participant.objects.get(vendor_pid=pid)
    assert participant.assignment is not None
    return participant


def test_back_to_draft_is_refused_once_anyone_is_randomized(pi: Client) -> None:
    study = ready_study()
    change_status(pi, study, Study.Status.RECRUITING)
    back_before = change_status(pi, study, Study.Status.DRAFT, reason="fix the weights")
    change_status(pi, study, Study.Status.RECRUITING)
    randomize_someone(study)

    refused = change_status(pi, study, Study.Status.DRAFT, reason="fix the weights again")

    assert "is now draft." in text(back_before)
    assert "Participants have been randomized: the design is locked" in text(refused)
    study.refresh_from_db()
    assert study.status == Study.Status.RECRUITING


def test_arms_weights_control_flag_ranker_keys_strata_and_seed_cannot_change_after_launch(pi: Client) -> None:
    study = ready_study(Study.Status.RECRUITING)
    page = text(pi.get(f"{STUDIES}{study.pk}/change/"))
    arms_before = list(study.arms.values_list("slug", "ranker_key", "allocation_weight", "is_control"))
    seed = study.randomization_seed
    data = study_form(study, strata_fields='["party"]', change_reason="try to change the design")
    data |= {"arms-0-allocation_weight": 9, "arms-0-ranker_key": "add_news", "arms-1-is_control": "on"}
    data |= {"randomization_seed": "guessable", "arms-TOTAL_FORMS": 3, "arms-2-name": "New", "arms-2-slug": "new"}

    pi.post(f"{STUDIES}{study.pk}/change/", data)

    for name in ("arms-0-allocation_weight", "arms-0-ranker_key", "arms-0-is_control", "strata_fields"):
        assert f'name="{name}"' not in page
    assert 'name="arms-MAX_NUM_FORMS" value="0"' in page  # no arm can be added
    study.refresh_from_db()
    assert list(study.arms.values_list("slug", "ranker_key", "allocation_weight", "is_control")) == arms_before
    assert (study.strata_fields, study.randomization_seed) == ([], seed)


def test_an_arm_start_date_can_change_after_launch_with_a_reason_recorded_in_the_audit_log(pi: Client) -> None:
    study = ready_study(Study.Status.RUNNING)
    arm = study.arms.get(slug="bridging")
    data = study_form(study)
    data["arms-1-starts_reddit"] = "2030-03-01"

    without_reason = pi.post(f"{STUDIES}{study.pk}/change/", data)
    with_reason = pi.post(f"{STUDIES}{study.pk}/change/", {**data, "change_reason": "Reddit scraper ready later"})

    assert "Say why you change an arm of a study that has left Draft" in text(without_reason)
    assert with_reason.status_code == 302
    arm.refresh_from_db()
    assert arm.starts_reddit == dt.date(2030, 3, 1)
    event = AuditEvent.objects.get(action="arm.changed")
    assert event.actor_label == "pi"
    assert event.detail["changes"] == {"starts_reddit": ["2024-01-01", "2030-03-01"]}
    assert event.detail["reason"] == "Reddit scraper ready later"


def test_pausing_a_source_of_a_running_study_is_audited_with_who_and_why(pi: Client) -> None:
    study = ready_study(Study.Status.RUNNING)
    source = study.sources.get()
    url = f"/admin/participants/recruitmentsource/{source.pk}/change/"

    without_reason = pi.post(url, source_form(source, active=False))
    paused = pi.post(url, source_form(source, active=False, change_reason="Too many speeders"))

    assert "Say why you change active of a running study." in text(without_reason)
    assert paused.status_code == 302
    event = AuditEvent.objects.get(action="source.paused")
    assert (event.actor_label, event.detail["reason"]) == ("pi", "Too many speeders")
    assert AuditEvent.objects.get(action="source.changed").detail["changes"] == {"active": [True, False]}


def test_a_new_consent_version_for_a_running_study_is_audited(pi: Client) -> None:
    study = ready_study(Study.Status.RUNNING)
    data = consent_form_admin(study, version="2.0", change_reason="IRB amendment 3")

    response = pi.post("/admin/participants/consentdocument/add/", data)

    assert response.status_code == 302
    event = AuditEvent.objects.get(action="consent.version_published")
    assert (event.actor_label, event.detail["version"], event.detail["reason"]) == ("pi", "2.0", "IRB amendment 3")


# --- 7. defaults --------------------------------------------------------------------------------


def test_a_blank_arm_start_date_reads_as_never_intervening_on_that_platform(pi: Client) -> None:
    study = ready_study()
    Arm.objects.filter(study=study, slug="bridging").update(starts_twitter=None)

    change_page = text(pi.get(f"{STUDIES}{study.pk}/change/"))
    checklist = text(pi.get(f"{STUDIES}{study.pk}/checklist/"))

    for page in (change_page, checklist):
        assert "X/Twitter: never intervenes on this platform" in page
        assert "Facebook: 2024-01-01" in page


def test_view_site_opens_the_research_dashboards(pi: Client) -> None:
    page = text(pi.get("/admin/"))

    assert '<a href="/research/">View site</a>' in page
    assert pi.get("/research/").status_code == 302


def test_dashboards_remember_the_study_a_researcher_last_looked_at() -> None:
    older = StudyFactory(name="Older study", status=Study.Status.RUNNING)
    StudyFactory(name="Newest study", status=Study.Status.RUNNING)
    researcher = login("reader", READER)
    colleague = login("colleague", READER)

    researcher.get("/research/funnel/", {"study": older.slug})
    again = text(researcher.get("/research/funnel/"))
    delivery = text(researcher.get("/research/ranking/delivery/"))
    other = text(colleague.get("/research/funnel/"))

    assert "Recruitment funnel · Older study" in again
    assert "Older study" in delivery.split("</h1>")[0]
    assert "Recruitment funnel · Newest study" in other


def test_in_production_recruiting_waits_for_a_frozen_pre_registration(settings: object) -> None:
    study = ready_study()
    pi = User.objects.create_user("pi-prod", is_staff=True)
    pi.groups.add(Group.objects.get(name=PI))
    pi = User.objects.get(pk=pi.pk)
    [plan_check] = [result for result in launch_checklist(study) if result.name == "The pre-registration is frozen"]
    assert plan_check.ok
    assert "Required before launch in production" in plan_check.detail

    settings.PRODUCTION = True  # type: ignore[attr-defined]
    readiness.report("scorer@node-1", identity())  # the other production-only check passes
    with pytest.raises(StudyStatusError, match="The pre-registration is frozen: Not frozen yet"):
        change_study_status(study=study, to=Study.Status.RECRUITING, by=pi)
    study.refresh_from_db()
    assert study.status == Study.Status.DRAFT

    plan = prereg.freeze_plan(study=study, text="S3 on polarization.", primary_outcomes=["polarization"], by=pi)
    launched = change_study_status(study=study, to=Study.Status.RECRUITING, by=pi)
    assert launched.status == Study.Status.RECRUITING
    [plan_check] = [result for result in launch_checklist(study) if result.name == "The pre-registration is frozen"]
    assert plan.frozen_hash[:12] in plan_check.detail
