"""Withdrawal under `delete` consent terms: nothing identifying or sensitive is left in PostgreSQL or Redis.

The search is deliberately blunt: every row of every table, cast to text, and every fallback list in Redis.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.db import connection
from django.test import Client
from django.utils import timezone

from participants.models import Assignment, AuditEvent, ConsentDocument, Participant, RecruitmentSource, Study
from participants.randomization import stratum_code
from rankers import slatelog
from rankers.models import Slate
from rankers.tasks import drain_slate_fallback
from tests.factories import ConsentDocumentFactory, SourceFactory, StudyFactory, paper_arms
from tests.participants.conftest import ELIGIBLE, give_consent, install_page_secrets, join, screen

pytestmark = pytest.mark.django_db

VENDOR_ID = "VND-7Q2-erasable"
EMAIL = "leaving.person@example.org"
REASON = "my neighbour works for the vendor zebracorn"
PARTY = "independent"  # the stratum's answer; "party=independent" is the label


@pytest.fixture
def fallback(settings: Any) -> Iterator[redis.Redis]:
    settings.RANK_FALLBACK_KEY = f"test:slate_fallback:{uuid.uuid4().hex}"
    client = redis.Redis.from_url(slatelog.redis_url())
    yield client
    client.delete(*slatelog.fallback_lists())


@pytest.fixture
def deleting_study() -> tuple[Study, RecruitmentSource, ConsentDocument]:
    study = StudyFactory(strata_fields=["party"])
    paper_arms(study)
    source = SourceFactory(study=study, pid_param="rid")
    document = ConsentDocumentFactory(study=study, on_withdrawal=ConsentDocument.OnWithdrawal.DELETE)
    return study, source, document


def every_row_as_text() -> list[str]:
    """Every row of every table in the database, each cast to text."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        )
        tables = cursor.fetchall()
        rows: list[str] = []
        for schema, table in tables:
            cursor.execute(f'SELECT t::text FROM "{schema}"."{table}" t')  # noqa: S608 (names from the catalogue)
            rows += [row[0] for row in cursor.fetchall()]
    return rows


def rows_since(existing: set[str]) -> list[str]:
    """The rows written or changed since ``existing`` was read (every_row_as_text)."""
    return [row for row in every_row_as_text() if row not in existing]


def fallback_entries(client: redis.Redis) -> list[str]:
    return [raw.decode() for name in slatelog.fallback_lists() for raw in client.lrange(name, 0, -1)]


def found(needles: list[str], haystack: list[str]) -> list[tuple[str, str]]:
    return [(needle, text[:200]) for needle in needles for text in haystack if needle.lower() in text.lower()]


def slate_record(public_id: str) -> slatelog.SlateRecord:
    return slatelog.SlateRecord(
        served_at=timezone.now().isoformat(), participant_id=public_id, study_id=1, arm="control",
        effective_arm="control", ranker_key="control", platform="reddit", content_type="post",
        session_id=f"session-of-{public_id}", original_ids=["i1"], original_hashes=["h" * 64], returned_ids=["i1"],
        added_ids=[], deleted_ids=[], invalid_items={}, ranker_ms=0.1, served_ms=500.0, fallback_reason="",
        intervention_on=False, prefetch=False, nrc=0.0, rbo=1.0, n_items=1, n_added=0, n_deleted=0,
    )  # fmt: skip


def enrol_through_the_pages(client: Client, source: RecruitmentSource, document: ConsentDocument) -> tuple[str, str]:
    """Vendor link, screener (with the stratum's answer), consent and the extension; the token and status key."""
    assert join(client, source, VENDOR_ID).status_code == 302
    assert screen(client, {**ELIGIBLE, "party": PARTY}).status_code == 302
    assert give_consent(client, document).status_code == 302
    code, key = install_page_secrets(client)
    # An extension that uses the vendor's id as its install id: the install must not keep it either.
    registered = client.post(
        "/api/v1/extension/register",
        {"enrolment_code": code, "install_key": f"install-{VENDOR_ID}"},
        content_type="application/json",
    )
    token = registered.json()["token"]
    client.post("/api/v1/extension/heartbeat", {}, content_type="application/json", HTTP_X_EXTENSION_TOKEN=token)
    return token, key


def test_delete_withdrawal_leaves_no_identifying_value_in_any_table_or_fallback_list(
    deleting_study: tuple[Study, RecruitmentSource, ConsentDocument],
    fallback: redis.Redis,
    django_capture_on_commit_callbacks: Any,
) -> None:
    study, source, document = deleting_study
    # What was there before the participant came (migrate loads the survey library, which asks "...Independent...").
    existing = set(every_row_as_text())
    client = Client()
    _token, key = enrol_through_the_pages(client, source, document)
    participant = Participant.objects.get(vendor_pid=VENDOR_ID)
    Participant.objects.filter(pk=participant.pk).update(email=EMAIL)
    Slate.objects.create(
        study_id=study.pk, participant_id=participant.public_id, arm="control", effective_arm="control",
        ranker_key="control", platform="reddit", content_type="post", session_id="s", served_ms=500.0,
    )  # fmt: skip
    fallback.rpush(slatelog.fallback_key(), slate_record(participant.public_id).to_json())
    fallback.rpush(slatelog.fallback_key() + ":failed", slate_record(participant.public_id).to_json())
    fallback.rpush(slatelog.fallback_key(), slate_record("p_someone_else").to_json())
    needles = [VENDOR_ID, EMAIL, PARTY, participant.public_id]
    # The search finds them while the participant takes part, so finding nothing afterwards means something.
    assert {needle for needle, _ in found(needles, rows_since(existing) + fallback_entries(fallback))} == set(needles)
    needles.append(REASON)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/p/{key}/withdraw/", {"confirm": "on", "reason": REASON})
    assert response.status_code == 302

    # The pseudonymous id stays on the rows that must outlive the erasure (assignment, consent, audit).
    assert found([VENDOR_ID, EMAIL, REASON, PARTY], rows_since(existing)) == []
    assert found(needles, fallback_entries(fallback)) == []
    assert len(fallback_entries(fallback)) == 1  # someone else's slate is untouched
    assert not Slate.objects.filter(participant_id=participant.public_id).exists()
    assignment = Assignment.objects.get(participant=participant)
    assert assignment.stratum == stratum_code(study.randomization_seed, f"party={PARTY}")
    assert "You have left the study" in client.get(f"/p/{key}/").content.decode()


def test_the_audit_trail_says_what_was_erased_after_the_withdrawal(
    deleting_study: tuple[Study, RecruitmentSource, ConsentDocument],
    fallback: redis.Redis,
    django_capture_on_commit_callbacks: Any,
) -> None:
    _, source, document = deleting_study
    client = Client()
    _, key = enrol_through_the_pages(client, source, document)
    participant = Participant.objects.get(vendor_pid=VENDOR_ID)
    fallback.rpush(slatelog.fallback_key(), slate_record(participant.public_id).to_json())

    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/p/{key}/withdraw/", {"confirm": "on", "reason": REASON})

    events = list(AuditEvent.objects.filter(object_id=participant.public_id).order_by("id"))
    actions = [event.action for event in events]
    assert actions[-3:] == ["participant.withdrawn", "participant.erased", "participant.erasure_completed"]
    withdrawn, erased, completed = events[-3:]
    assert withdrawn.detail == {"reason_given": True, "erase": True}
    assert "vendor_pid" in erased.detail["fields"]
    assert "email" in erased.detail["fields"]
    assert erased.detail["heartbeats"] == 1
    assert erased.detail["vendor_events"] >= 1
    assert erased.detail["slates"] == 0
    assert completed.detail == {"fallback_slates": 1, "late_slates": 0}


def test_an_erased_vendor_id_coming_back_is_still_a_duplicate_and_stays_erased(
    deleting_study: tuple[Study, RecruitmentSource, ConsentDocument],
    fallback: redis.Redis,
    django_capture_on_commit_callbacks: Any,
) -> None:
    _, source, document = deleting_study
    client = Client()
    _, key = enrol_through_the_pages(client, source, document)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/p/{key}/withdraw/", {"confirm": "on", "reason": REASON})

    again = join(Client(), source, VENDOR_ID)

    assert again.status_code == 302
    assert again["Location"] == f"https://vendor.example/duplicate?id={VENDOR_ID}"
    assert Participant.objects.filter(source=source).count() == 1
    assert found([VENDOR_ID], every_row_as_text()) == []


def test_the_drain_drops_slates_of_erased_participants_and_keeps_the_others(
    deleting_study: tuple[Study, RecruitmentSource, ConsentDocument], fallback: redis.Redis
) -> None:
    _, source, _ = deleting_study
    erased = Participant.objects.create(study=source.study, source=source, erased_at=timezone.now())
    kept = Participant.objects.create(study=source.study, source=source)
    # Written by requests answered just before the withdrawal, after its erasure had run.
    fallback.rpush(slatelog.fallback_key(), slate_record(erased.public_id).to_json())
    fallback.rpush(slatelog.fallback_key(), slate_record(kept.public_id).to_json())
    fallback.rpush(slatelog.fallback_key() + ":failed", slate_record(erased.public_id).to_json())

    assert drain_slate_fallback() == 1

    assert not Slate.objects.filter(participant_id=erased.public_id).exists()
    assert Slate.objects.filter(participant_id=kept.public_id).count() == 1
    assert fallback_entries(fallback) == []


def test_withdrawal_under_keep_terms_keeps_the_reason_off_the_audit_trail(
    client: Client, deleting_study: tuple[Study, RecruitmentSource, ConsentDocument], fallback: redis.Redis
) -> None:
    study, source, _ = deleting_study
    keep = ConsentDocumentFactory(study=study, version="2.0", on_withdrawal=ConsentDocument.OnWithdrawal.KEEP)
    _, key = enrol_through_the_pages(client, source, keep)

    client.post(f"/p/{key}/withdraw/", {"confirm": "on", "reason": REASON})

    participant = Participant.objects.get(vendor_pid=VENDOR_ID)
    assert participant.withdrawal_reason == REASON
    assert participant.erased_at is None
    assert found(["zebracorn"], [str(event.detail) for event in AuditEvent.objects.all()]) == []
