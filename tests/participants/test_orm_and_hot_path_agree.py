"""The consent and signup rules exist twice: as ORM methods and in the ranking path's one SQL query. On the same
rows, every combination of the cases below, the two must give the same answers."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from participants.models import ConsentDocument, ConsentRecord, ExtensionInstall, Participant, Study
from participants.tokens import ENROLMENTS_BY_TOKEN_HASH_SQL, participant_for_token
from tests.factories import StudyFactory

pytestmark = pytest.mark.django_db

# Which consent documents the study has and which of them the participant agreed to.
CONSENT_CASES = {
    "agreed_to_the_only_version": (["v1"], ["v1"]),
    "agreed_to_an_older_version": (["v1", "v2"], ["v1"]),
    "agreed_to_both": (["v1", "v2"], ["v1", "v2"]),
    "newer_version_not_yet_in_force": (["v1", "v3-future"], ["v1"]),
    "agreed_only_to_the_future_version": (["v1", "v3-future"], ["v3-future"]),
    "never_agreed": (["v1"], []),
    "no_document_at_all": ([], []),
}
STATUSES = list(Study.Status)
WITHDRAWN = (False, True)
UNINSTALLED = (False, True)


def _build(now: dt.datetime) -> list[tuple[str, str, Participant]]:
    """One study per (consent case, status); one participant per (withdrawn, uninstalled) in each."""
    built = []
    for (case, (documents, agreed)), status in itertools.product(CONSENT_CASES.items(), STATUSES):
        study = StudyFactory(status=status)
        docs = {}
        for n, version in enumerate(documents):
            effective = now + dt.timedelta(days=3) if version.endswith("future") else now - dt.timedelta(days=10 - n)
            docs[version] = ConsentDocument.objects.create(
                study=study, version=version, text="Terms.", effective_at=effective
            )
        for withdrawn, uninstalled in itertools.product(WITHDRAWN, UNINSTALLED):
            participant = Participant.objects.create(
                study=study, consented_at=now - dt.timedelta(days=9), withdrawn_at=now if withdrawn else None
            )
            for version in agreed:
                ConsentRecord.objects.create(participant=participant, document=docs[version], given_at=now)
            token = f"token-{participant.pk}"
            ExtensionInstall.objects.create(
                participant=participant,
                install_key=f"key-{participant.pk}",
                token_hash=ExtensionInstall.hash_token(token),
                uninstalled_at=now if uninstalled else None,
            )
            built.append((f"{case}/{status}/withdrawn={withdrawn}/uninstalled={uninstalled}", token, participant))
    return built


def _hot_path_rows(tokens: list[str]) -> dict[str, dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(ENROLMENTS_BY_TOKEN_HASH_SQL, [[ExtensionInstall.hash_token(t) for t in tokens]])
        names = [column.name for column in cursor.description]
        return {row["token_hash"]: row for row in (dict(zip(names, values, strict=True)) for values in cursor)}


def test_the_orm_and_the_ranking_paths_sql_agree_on_consent_withdrawal_tokens_and_closed_studies() -> None:
    now = timezone.now()
    built = _build(now)
    rows = _hot_path_rows([token for _, token, _ in built])

    disagreements = []
    for label, token, participant in built:
        participant.refresh_from_db()
        found = participant_for_token(token)
        row = rows.get(ExtensionInstall.hash_token(token))
        if (found is None) != (row is None):
            disagreements.append(f"{label}: token resolves in the ORM={found is not None}, in SQL={row is not None}")
            continue
        if row is None:
            continue
        orm = {
            "consent_ok": participant.has_current_consent(now),
            "withdrawn": participant.is_withdrawn,
            "study_closed": participant.study.is_closed,
        }
        sql = {
            "consent_ok": row["consent_ok"],
            "withdrawn": row["withdrawn_at"] is not None,
            "study_closed": row["study_closed"],
        }
        if orm != sql:
            disagreements.append(f"{label}: ORM {orm} != SQL {sql}")

    assert disagreements == []
    # The grid covers both answers of every rule, so agreement is not agreement on a constant.
    assert {r["consent_ok"] for r in rows.values()} == {True, False}
    assert {r["study_closed"] for r in rows.values()} == {True, False}
    assert len(rows) == len(built) // 2  # the uninstalled half resolves in neither
