"""Vendor entry links: bad input, signatures, duplicates, and the redirects back to the vendor."""

from __future__ import annotations

import pytest
from django.test import Client

from participants.models import ConsentDocument, Participant, RecruitmentSource, Study, VendorEvent
from participants.vendors import sign_query
from tests.factories import SourceFactory
from tests.participants.conftest import ELIGIBLE, give_consent, join, screen

pytestmark = pytest.mark.django_db


def test_unknown_source_shows_a_friendly_page_and_creates_nobody(client: Client, source: RecruitmentSource) -> None:
    response = client.get("/join/nobody/", {"rid": "x1"})
    assert response.status_code == 404
    assert "This link does not work" in response.content.decode()
    assert Participant.objects.count() == 0
    event = VendorEvent.objects.get()
    assert (event.kind, event.source_slug, event.params) == ("rejected", "nobody", {"rid": ["x1"]})


def test_inactive_source_is_treated_as_unknown(client: Client, source: RecruitmentSource) -> None:
    source.active = False
    source.save()
    assert join(client, source, "x1").status_code == 404
    assert Participant.objects.count() == 0


def test_missing_vendor_id_shows_a_friendly_page_and_creates_nobody(client: Client, source: RecruitmentSource) -> None:
    response = client.get(f"/join/{source.slug}/", {"pid": "wrong-param"})
    assert response.status_code == 400
    assert "This link does not work" in response.content.decode()
    assert Participant.objects.count() == 0
    assert VendorEvent.objects.get().note == "missing or invalid rid"


def test_blank_vendor_id_is_refused(client: Client, source: RecruitmentSource) -> None:
    assert join(client, source, "   ").status_code == 400
    assert Participant.objects.count() == 0


def test_source_slug_can_be_qualified_by_the_study(client: Client, source: RecruitmentSource) -> None:
    other_study_source = SourceFactory(slug=source.slug)  # same slug in a second recruiting study
    assert join(client, source, "x1").status_code == 404  # ambiguous without the study
    response = client.get(f"/join/{other_study_source.study.slug}/{source.slug}/", {"pid": "x1"})
    assert response.status_code == 302
    assert Participant.objects.get().study == other_study_source.study


def test_running_study_still_takes_signups(client: Client, source: RecruitmentSource) -> None:
    Study.objects.update(status=Study.Status.RUNNING)
    response = join(client, source, "x1")
    assert response.status_code == 302
    assert response["Location"] == "/signup/"
    assert Participant.objects.get().stage == "screening"


@pytest.mark.parametrize("status", [Study.Status.CLOSED, Study.Status.DRAFT])
def test_closed_or_draft_study_turns_links_away(client: Client, source: RecruitmentSource, status: str) -> None:
    Study.objects.update(status=status)
    assert join(client, source, "x1").status_code == 404
    assert Participant.objects.count() == 0


# Signatures below were computed outside our code, with
#   printf '%s' 'rid=abc&ts=1700000000' | openssl dgst -sha256 -hmac s3cret
# so a wrong algorithm, key, message or parameter order in `participants/vendors.py` fails these tests.
SIG_ABC = "7bc64eeccdd3d6215db37d38bd81bc1e929bbf329f6ef41ef7922a4fb9f17ed6"  # rid=abc&ts=1700000000
SIG_ENCODED = "57138ca7f2f0326fdecf1929e74c3b4c2776f6fb51e974d79d1ae21b108c7c81"  # rid=a%20b%2Fc&ts=1700000000
SIG_DECODED = "2be94eb3b124fe3d2ea77dd41e2c90e4c418ff2b21faaea56d40db930c7574ef"  # rid=a b/c&ts=1700000000
SIG_REORDERED = "25e37e3d8077ca6cd3a65fca85507e08665145a1319027e44a8e0b11c65070e0"  # ts=1700000000&rid=abc


def test_signing_matches_the_published_hmac_sha256_test_vector() -> None:
    # RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?".
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert sign_query("what do ya want for nothing?", "Jefe") == expected


@pytest.mark.parametrize(
    ("query", "vendor_pid"),
    [
        pytest.param(f"rid=abc&ts=1700000000&sig={SIG_ABC}", "abc", id="sig-last"),
        pytest.param(f"sig={SIG_ABC}&rid=abc&ts=1700000000", "abc", id="sig-first"),
        pytest.param(f"rid=abc&sig={SIG_ABC.upper()}&ts=1700000000", "abc", id="sig-between-upper-case"),
        pytest.param(f"rid=a%20b%2Fc&sig={SIG_ENCODED}&ts=1700000000", "a b/c", id="percent-encoded-sig-between"),
        pytest.param(f"ts=1700000000&rid=abc&sig={SIG_REORDERED}", "abc", id="vendor-order"),
    ],
)
def test_correctly_signed_link_is_accepted(
    client: Client, source: RecruitmentSource, query: str, vendor_pid: str
) -> None:
    source.signing_secret = "s3cret"
    source.save()
    response = client.get(f"/join/{source.slug}/?{query}")
    assert response.status_code == 302
    assert Participant.objects.get().vendor_pid == vendor_pid


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("rid=abc&ts=1700000000", id="unsigned"),
        pytest.param(f"rid=abd&ts=1700000000&sig={SIG_ABC}", id="tampered-id"),
        pytest.param("rid=abc&ts=1700000000&sig=0000", id="garbage-signature"),
        pytest.param(f"rid=abc&ts=1700000000&sig={SIG_REORDERED}", id="signed-in-another-order"),
        pytest.param(f"rid=a%20b%2Fc&ts=1700000000&sig={SIG_DECODED}", id="signed-after-decoding"),
        pytest.param("rid=abc&ts=1700000000&sig=", id="empty-signature"),
    ],
)
def test_tampered_or_unsigned_link_is_rejected_and_logged(
    client: Client, source: RecruitmentSource, query: str
) -> None:
    source.signing_secret = "s3cret"
    source.save()
    response = client.get(f"/join/{source.slug}/?{query}")
    assert response.status_code == 403
    assert "could not be verified" in response.content.decode()
    assert Participant.objects.count() == 0
    event = VendorEvent.objects.get()
    assert event.kind == "rejected"
    assert event.source == source
    assert query in event.url


def test_link_signed_with_another_secret_is_rejected(client: Client, source: RecruitmentSource) -> None:
    source.signing_secret = "another-secret"
    source.save()
    response = client.get(f"/join/{source.slug}/?rid=abc&ts=1700000000&sig={SIG_ABC}")
    assert response.status_code == 403
    assert Participant.objects.count() == 0


def test_repeat_vendor_id_from_another_browser_goes_to_the_duplicate_url(
    client: Client, source: RecruitmentSource
) -> None:
    join(client, source, "dup 1")
    screen(client, {**ELIGIBLE, "chrome": "no"})  # first visit ends in a screenout
    response = join(Client(), source, "dup 1")
    assert response.status_code == 302
    assert response["Location"] == "https://vendor.example/duplicate?id=dup%201"
    participant = Participant.objects.get()
    assert participant.vendor_outcome == "screenout"  # the terminal outcome is never changed
    assert VendorEvent.objects.filter(kind="redirect", outcome="duplicate", participant=participant).count() == 1


def test_ineligible_answers_go_to_the_screenout_url(client: Client, source: RecruitmentSource) -> None:
    join(client, source, "x1")
    response = screen(client, {**ELIGIBLE, "desktop_share": "29"})
    assert response["Location"] == "https://vendor.example/screenout?id=x1"
    participant = Participant.objects.get()
    assert (participant.stage, participant.vendor_outcome) == ("screened_out", "screenout")
    # Coming back to the screener does not give a second chance.
    again = client.post("/signup/screener/", ELIGIBLE)
    assert again["Location"] == "/signup/return/"
    participant.refresh_from_db()
    assert participant.vendor_outcome == "screenout"


@pytest.mark.parametrize(
    ("change", "eligible"),
    [
        ({}, True),
        ({"device": "phone"}, False),
        ({"device": "desktop"}, True),
        ({"chrome": "no"}, False),
        ({"platforms": ["instagram"]}, False),
        ({"platforms": ["twitter"]}, True),
        ({"desktop_share": "30"}, True),
        ({"desktop_share": "29"}, False),
        ({"interest": "no"}, False),
    ],
)
def test_default_screener_follows_table_s16(
    client: Client, source: RecruitmentSource, change: dict[str, object], eligible: bool
) -> None:
    join(client, source, "x1")
    response = screen(client, {**ELIGIBLE, **change})
    assert (response["Location"] == "/signup/consent/") is eligible


def test_researchers_can_change_the_eligibility_rules(client: Client, source: RecruitmentSource) -> None:
    source.study.screener_rules = {"min_desktop_share": 50, "allowed_devices": ["desktop"]}
    source.study.save()
    join(client, source, "x1")
    assert "screenout" in screen(client, {**ELIGIBLE, "desktop_share": "45"})["Location"]
    join(Client(), source, "x2")
    client2 = Client()
    join(client2, source, "x3")
    assert screen(client2, {**ELIGIBLE, "device": "desktop", "desktop_share": "60"})["Location"] == "/signup/consent/"


def test_incomplete_screener_is_shown_again_with_errors(client: Client, source: RecruitmentSource) -> None:
    join(client, source, "x1")
    response = client.post("/signup/screener/", {"device": "laptop"})
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()
    assert Participant.objects.get().stage == "screening"


def test_source_over_quota_goes_to_the_overquota_url(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    source.quota = 1
    source.save()
    join(client, source, "first")
    screen(client)
    give_consent(client, consent_doc)
    late = Client()
    join(late, source, "second")
    response = screen(late)
    assert response["Location"] == "https://vendor.example/overquota?id=second"
    assert Participant.objects.get(vendor_pid="second").vendor_outcome == "overquota"


def test_source_without_redirect_templates_shows_a_page_instead(client: Client, study: Study) -> None:
    ads = SourceFactory(study=study, slug="fb-ads", screenout_url="", complete_url="")
    join(client, ads, "x1")
    response = screen(client, {**ELIGIBLE, "interest": "no"})
    assert response.status_code == 200
    assert "Thank you for your interest" in response.content.decode()


def test_signup_pages_without_a_session_ask_to_start_again(client: Client) -> None:
    for url in ["/signup/", "/signup/screener/", "/signup/consent/", "/signup/install/", "/signup/return/"]:
        response = client.get(url)
        assert response.status_code == 400
        assert "Please start again" in response.content.decode()


def test_page_copy_comes_from_the_researchers_rows(client: Client, source: RecruitmentSource) -> None:
    source.study.page_copy.create(key="landing", title="Help science", body="First paragraph.\n\nSecond one.")
    join(client, source, "x1")
    html = client.get("/signup/").content.decode()
    assert "<h1>Help science</h1>" in html
    assert "<p>Second one.</p>" in html


@pytest.mark.parametrize("raw", ["rid=ab%00cd", "rid=ab%ffcd", "rid=ok&note=%c3%28", "rid=a%07b"])
def test_a_link_with_nul_or_undecodable_bytes_shows_the_link_does_not_work_page(
    client: Client, source: RecruitmentSource, raw: str
) -> None:
    response = client.get(f"/join/{source.slug}/?{raw}")

    assert response.status_code == 400
    assert "This link does not work" in response.content.decode()
    assert Participant.objects.count() == 0
    event = VendorEvent.objects.get()
    assert event.kind == "rejected"
    assert event.url.endswith(f"?{raw}")  # the raw link, byte for byte, percent-encoded
    assert event.params == {}


def test_entry_links_are_rate_limited_per_client_address(client: Client, source: RecruitmentSource, settings) -> None:
    settings.JOIN_RATE_PER_SECOND, settings.JOIN_BURST = 0.001, 3
    settings.PRC_CLIENT_IP_HEADER = "X-Real-IP"

    statuses = [
        client.get(f"/join/{source.slug}/", {"rid": f"v{i}"}, headers={"X-Real-IP": "203.0.113.9"}).status_code
        for i in range(5)
    ]
    elsewhere = client.get(f"/join/{source.slug}/", {"rid": "w1"}, headers={"X-Real-IP": "198.51.100.2"})

    assert statuses == [302, 302, 302, 429, 429]
    assert elsewhere.status_code == 302
    assert Participant.objects.count() == 4
