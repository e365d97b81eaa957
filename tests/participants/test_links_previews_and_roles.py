"""The link builder, test participants, previews of the participant pages, and roles that hold in the URL."""

from __future__ import annotations

import datetime as dt
import html
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from participants import dashboard
from participants.models import Assignment, AuditEvent, PageCopy, Participant, StratumCounter, Study
from participants.roles import OPS, PI, READER, create_roles
from tests.factories import ArmFactory, ConsentDocumentFactory, ParticipantFactory, SourceFactory, StudyFactory, login
from tests.participants.conftest import ELIGIBLE, give_consent, screen

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def roles() -> dict[str, Group]:
    return create_roles()


@pytest.fixture
def pi() -> Client:
    return login("pi", PI)


def make_study(status: str = Study.Status.RECRUITING, **source: str) -> Study:
    study = StudyFactory(status=status, slug="setup-study")
    ArmFactory(study=study, slug="control", ranker_key="control", is_control=True)
    ArmFactory(study=study, slug="bridging", ranker_key="uprank_bridging")
    ConsentDocumentFactory(study=study)
    SourceFactory(study=study, slug="panel", **{"pid_param": "PROLIFIC_PID", "vendor": "prolific", **source})
    return study


def builder_links(client: Client, study: Study) -> tuple[str, str]:
    """The vendor link and the "try it" link, as the source's admin page shows them."""
    page = client.get(f"/admin/participants/recruitmentsource/{study.sources.get().pk}/change/").content.decode()
    vendor_link = re.search(r'value="([^"]+)" id="vendor-link"', page)
    try_link = re.search(r'value="([^"]+)" id="try-link"', page)
    assert vendor_link, page
    assert try_link, page
    return html.unescape(vendor_link.group(1)), html.unescape(try_link.group(1))


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


# --- 4. the link builder ------------------------------------------------------------------------


def test_link_builder_shows_the_vendor_link_with_the_vendors_own_placeholder(pi: Client) -> None:
    study = make_study(signing_secret="s3cret")

    vendor_link, _ = builder_links(pi, study)

    assert vendor_link == (
        "http://testserver/join/setup-study/panel/?PROLIFIC_PID={{%PROLIFIC_PID%}}&sig=HMAC_SHA256_HEX"
    )


def test_the_try_it_link_is_signed_accepted_by_join_and_makes_a_test_participant(pi: Client) -> None:
    study = make_study(signing_secret="s3cret")
    _, try_link = builder_links(pi, study)
    participant_browser = Client()

    response = participant_browser.get(path_of(try_link))

    assert response.status_code == 302
    assert response["Location"] == "/signup/"
    assert "&sig=" in try_link
    participant = Participant.objects.get()
    assert participant.is_test
    assert participant.vendor_pid.startswith("test-")


def test_a_vendor_link_made_from_the_builder_is_accepted_and_makes_a_real_participant(pi: Client) -> None:
    study = make_study()
    vendor_link, _ = builder_links(pi, study)

    response = Client().get(path_of(vendor_link.replace("{{%PROLIFIC_PID%}}", "5f1a2b")))

    assert response.status_code == 302
    participant = Participant.objects.get()
    assert (participant.vendor_pid, participant.is_test) == ("5f1a2b", False)


def test_the_id_parameter_is_matched_without_regard_to_case() -> None:
    make_study()

    response = Client().get("/join/panel/", {"prolific_pid": "abc"})

    assert response.status_code == 302
    assert Participant.objects.get().vendor_pid == "abc"


def test_a_test_marker_for_another_id_does_not_make_a_test_participant(pi: Client) -> None:
    study = make_study()
    _, try_link = builder_links(pi, study)
    forged = re.sub(r"PROLIFIC_PID=test-[0-9a-f]+", "PROLIFIC_PID=real-person", path_of(try_link))

    Client().get(forged)

    assert Participant.objects.get().is_test is False


def test_only_a_test_link_opens_a_draft_study(pi: Client) -> None:
    study = make_study(status=Study.Status.DRAFT)
    vendor_link, try_link = builder_links(pi, study)

    real = Client().get(path_of(vendor_link.replace("{{%PROLIFIC_PID%}}", "early-bird")))
    test = Client().get(path_of(try_link))

    assert real.status_code == 404
    assert test.status_code == 302
    assert list(Participant.objects.values_list("is_test", flat=True)) == [True]


# --- 5. test participants -----------------------------------------------------------------------


def walk_to_install(client: Client, path: str, study: Study) -> Participant:
    assert client.get(path).status_code == 302
    assert screen(client, ELIGIBLE).status_code == 302
    assert give_consent(client, study.consent_documents.get()).status_code == 302
    assert client.get("/signup/install/").status_code == 200
    return Participant.objects.latest("id")


def test_a_test_participant_is_left_out_of_funnel_cost_and_consort_and_uses_its_own_sequence(pi: Client) -> None:
    study = make_study()
    study.sources.update(cost_per_complete="2.50")
    vendor_link, try_link = builder_links(pi, study)
    tester = walk_to_install(Client(), path_of(try_link), study)
    real = walk_to_install(Client(), path_of(vendor_link.replace("{{%PROLIFIC_PID%}}", "real-1")), study)
    today = timezone.localdate()

    rows = dashboard.funnel_rows(study, today - dt.timedelta(days=1), today + dt.timedelta(days=1))
    consort = dashboard.consort_rows(study, today - dt.timedelta(days=1), today + dt.timedelta(days=1))
    funnel_page = pi.get("/research/funnel/", {"study": study.slug}).content.decode()

    assert [(row.started, row.consented, row.completes, row.cost) for row in rows] == [(1, 1, 1, Decimal("2.50"))]
    assert sum(row.assigned for row in consort) == 1
    assert tester.assignment.stratum.startswith("test:")
    assert tester.assignment.position == 0
    assert not real.assignment.stratum.startswith("test:")
    assert real.assignment.position == 0
    assert StratumCounter.objects.get(study=study, stratum=real.assignment.stratum).next_position == 1
    assert 'data-source="Total"' in funnel_page


def test_test_participants_can_be_deleted_and_real_ones_cannot(pi: Client) -> None:
    study = make_study()
    _, try_link = builder_links(pi, study)
    tester = walk_to_install(Client(), path_of(try_link), study)
    real = ParticipantFactory(study=study, source=study.sources.get())
    url = "/admin/participants/participant/{}/delete/"

    refused = pi.post(url.format(real.pk), {"post": "yes"})
    deleted = pi.post(url.format(tester.pk), {"post": "yes"})

    assert refused.status_code == 403
    assert deleted.status_code == 302
    assert list(Participant.objects.values_list("pk", flat=True)) == [real.pk]
    assert not Assignment.objects.filter(participant_id=tester.pk).exists()
    event = AuditEvent.objects.get(action="participant.test_deleted")
    assert (event.actor_label, event.object_id) == ("pi", tester.public_id)
    call_command("audit_randomization", study.slug, stdout=open("/dev/null", "w"))  # noqa: SIM115


def test_the_participant_list_flags_and_filters_test_participants(pi: Client) -> None:
    study = make_study()
    tester = ParticipantFactory(study=study, source=study.sources.get(), is_test=True)
    real = ParticipantFactory(study=study, source=study.sources.get())

    listing = pi.get("/admin/participants/participant/", {"is_test__exact": "1"}).content.decode()

    assert tester.public_id in listing
    assert real.public_id not in listing


# --- 5. previews ---------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["landing", "screener", "consent", "install", "status"])
def test_every_participant_page_previews_with_the_studys_own_copy_without_a_participant(page: str) -> None:
    study = make_study(status=Study.Status.DRAFT)
    PageCopy.objects.create(study=study, key=page, title=f"Our own {page} title", body="Our own words.")
    reader = login("reader", READER)

    response = reader.get(f"/research/studies/{study.slug}/preview/{page}/")
    posted = reader.post(f"/research/studies/{study.slug}/preview/{page}/", ELIGIBLE)

    content = html.unescape(response.content.decode())
    assert response.status_code == 200
    assert posted.status_code == 200
    assert f"Our own {page} title" in content
    assert "Our own words." in content
    assert f"Preview of {study.name}" in content
    assert not Participant.objects.exists()


def test_the_consent_preview_shows_the_documents_statements() -> None:
    study = make_study(status=Study.Status.DRAFT)

    content = login("pi", PI).get(f"/research/studies/{study.slug}/preview/consent/").content.decode()

    assert "I am 18 or older" in content
    assert "I agree to take part" in content


def test_previews_are_for_researchers_only() -> None:
    study = make_study()

    anonymous = Client().get(f"/research/studies/{study.slug}/preview/landing/")
    unknown = login("pi", PI).get(f"/research/studies/{study.slug}/preview/secret-page/")

    assert anonymous.status_code == 302
    assert "/login/" in anonymous["Location"]
    assert unknown.status_code == 404


# --- 6. roles that hold in the URL --------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "lookup"),
    [
        ("/admin/participants/participant/", "email__iexact"),
        ("/admin/participants/participant/", "email__istartswith"),
        ("/admin/participants/participant/", "email"),
        ("/admin/participants/consentrecord/", "participant__email__iexact"),
        ("/admin/participants/assignment/", "participant__email__startswith"),
        ("/admin/participants/payment/", "participant__email"),
    ],
)
def test_a_read_only_researcher_cannot_filter_by_email_in_the_url(path: str, lookup: str) -> None:
    ParticipantFactory(email="someone@example.org")
    reader = login("reader", READER)

    response = reader.get(path, {lookup: "someone@example.org"})

    assert response.status_code == 400
    assert b"someone@example.org" not in response.content


def test_operations_may_filter_by_email_because_they_may_see_it() -> None:
    participant = ParticipantFactory(email="someone@example.org")

    response = login("ops", OPS).get("/admin/participants/participant/", {"email__iexact": "someone@example.org"})

    assert response.status_code == 200
    assert participant.public_id in response.content.decode()


def test_a_read_only_researcher_is_not_offered_the_slate_inspector() -> None:
    StudyFactory(status=Study.Status.RUNNING)

    reader_page = login("reader", READER).get("/research/ranking/delivery/").content.decode()
    pi_page = login("pi", PI).get("/research/ranking/delivery/").content.decode()

    assert "Inspect one slate" not in reader_page
    assert "Inspect one slate" in pi_page
