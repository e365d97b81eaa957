"""Concurrent signups on PostgreSQL: one assignment each, and blocks filled exactly."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.test import Client

from participants.models import Assignment, ConsentDocument, Participant, RecruitmentSource, StratumCounter, Study
from participants.paper import PAPER_ARMS
from participants.randomization import stratum_code
from tests.factories import ConsentDocumentFactory, SourceFactory, StudyFactory, paper_arms
from tests.participants.conftest import ELIGIBLE, consent_form, join, screen

PAPER_WEIGHTS = {arm.slug: arm.allocation_weight for arm in PAPER_ARMS}


def screened_clients(source: RecruitmentSource, n: int, answers: list[dict[str, object]] | None = None) -> list[Client]:
    clients = []
    for i in range(n):
        client = Client(REMOTE_ADDR=f"10.1.{i // 250}.{i % 250}")  # each from their own address, as in a study
        join(client, source, f"race-{i}")
        assert screen(client, (answers or [ELIGIBLE] * n)[i])["Location"] == "/signup/consent/"
        clients.append(client)
    return clients


def consent_all_at_once(clients: list[Client], document: ConsentDocument) -> list[int]:
    """Every client posts its consent at the same moment, each thread on its own connection."""
    barrier = threading.Barrier(len(clients))
    statuses: list[int] = []
    errors: list[BaseException] = []

    def sign(client: Client) -> None:
        try:
            barrier.wait(timeout=60)
            statuses.append(client.post("/signup/consent/", consent_form(document)).status_code)
        except BaseException as exc:  # a thread's failure must fail the test, not vanish
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sign, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return statuses


def arm_counts(assignments: object) -> Counter[str]:
    return Counter(a.arm.slug for a in assignments)  # type: ignore[attr-defined]


@pytest.fixture
def race_study() -> tuple[Study, RecruitmentSource, ConsentDocument]:
    study = StudyFactory()
    paper_arms(study)
    return study, SourceFactory(study=study), ConsentDocumentFactory(study=study)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_signups_get_one_assignment_each_in_exact_blocks(
    race_study: tuple[Study, RecruitmentSource, ConsentDocument],
) -> None:
    study, source, document = race_study
    clients = screened_clients(source, 50)
    try:
        statuses = consent_all_at_once(clients, document)
        assert statuses == [302] * 50
        assignments = list(Assignment.objects.filter(participant__study=study).select_related("arm"))
        assert len(assignments) == 50
        assert len({a.participant_id for a in assignments}) == 50
        assert sorted(a.position for a in assignments) == list(range(50))
        first_seven_blocks = [a for a in assignments if a.position < 49]
        assert arm_counts(first_seven_blocks) == {slug: 7 * weight for slug, weight in PAPER_WEIGHTS.items()}
        assert StratumCounter.objects.get(study=study).next_position == 50
        assert Participant.objects.filter(study=study, consented_at__isnull=False).count() == 50
        out = StringIO()
        call_command("audit_randomization", study.slug, stdout=out)
        assert "OK: 50 assignments in 1 strata" in out.getvalue()
    finally:
        connections.close_all()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_signups_in_two_strata_fill_each_stratum_in_blocks(
    race_study: tuple[Study, RecruitmentSource, ConsentDocument],
) -> None:
    study, source, document = race_study
    study.strata_fields = ["party"]
    study.save()
    answers = [{**ELIGIBLE, "party": "democrat" if i % 2 else "republican"} for i in range(28)]
    clients = screened_clients(source, 28, answers)
    try:
        assert consent_all_at_once(clients, document) == [302] * 28
        for party in ("democrat", "republican"):
            code = stratum_code(study.randomization_seed, f"party={party}")
            stratum = Assignment.objects.filter(participant__study=study, stratum=code).select_related("arm")
            assert sorted(a.position for a in stratum) == list(range(14))
            assert arm_counts(stratum) == {slug: 2 * weight for slug, weight in PAPER_WEIGHTS.items()}
    finally:
        connections.close_all()


_addresses = itertools.count()


def sign_up_three(source: RecruitmentSource, consent_doc: ConsentDocument) -> None:
    for i in range(3):
        n = next(_addresses)
        other = Client(REMOTE_ADDR=f"10.2.{n // 250}.{n % 250}")  # /join is rate-limited per address
        join(other, source, f"a{i}")
        screen(other)
        other.post("/signup/consent/", consent_form(consent_doc))


@pytest.mark.django_db
def test_audit_command_reports_an_assignment_that_does_not_match_the_sequence(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    sign_up_three(source, consent_doc)
    out = StringIO()
    call_command("audit_randomization", source.study.slug, stdout=out)
    assert "OK: 3 assignments" in out.getvalue()

    # Forge one allocation behind the trigger's back (as a tampering DBA would have to).
    victim = Assignment.objects.get(position=1)
    wrong = source.study.arms.exclude(pk=victim.arm_id).first()
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")  # superuser only: skips triggers
        cursor.execute("UPDATE participants_assignment SET arm_id = %s WHERE id = %s", [wrong.pk, victim.pk])
        cursor.execute("SET session_replication_role = DEFAULT")
    err = StringIO()
    with pytest.raises(CommandError, match="1 problem"):
        call_command("audit_randomization", source.study.slug, stdout=StringIO(), stderr=err)
    assert f"{victim.stratum}#1: {victim.participant.public_id}" in err.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize(("own_stratum", "next_position"), [(True, 5), (True, 2), (False, 4)])
def test_audit_command_reports_a_stratum_counter_that_does_not_match_the_assignments(
    source: RecruitmentSource, consent_doc: ConsentDocument, own_stratum: bool, next_position: int
) -> None:
    sign_up_three(source, consent_doc)
    [counter] = StratumCounter.objects.filter(study=source.study)  # the three share one stratum
    assert counter.next_position == 3
    stratum = counter.stratum if own_stratum else "s_0000000000000000"  # or a stratum nobody is in

    # A counter moved by hand (or a lost update) would hand out a position twice or skip one.
    StratumCounter.objects.update_or_create(
        study=source.study, stratum=stratum, defaults={"next_position": next_position}
    )
    err = StringIO()
    with pytest.raises(CommandError, match="1 problem"):
        call_command("audit_randomization", source.study.slug, stdout=StringIO(), stderr=err)
    expected = 3 if own_stratum else 0
    assert f"{stratum}: counter at {next_position} but {expected} assignments" in err.getvalue()


@pytest.mark.django_db
def test_audit_command_refuses_an_unknown_study() -> None:
    with pytest.raises(CommandError, match="no study"):
        call_command("audit_randomization", "nope")


@pytest.mark.django_db
def test_assignments_cannot_be_changed_once_made(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    from django.db import DatabaseError, transaction

    join(client, source, "x")
    screen(client)
    client.post("/signup/consent/", consent_form(consent_doc))
    assignment = Assignment.objects.get()
    assignment.arm = source.study.arms.exclude(pk=assignment.arm_id).first()
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        assignment.save()
