"""Behaviour events through the extension API: batches, idempotency, per-event refusals, withdrawal, rollups."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.utils import timezone

from participants import events
from participants.behaviour import MAX_BATCH
from participants.models import (
    BehaviourEvent,
    ConsentDocument,
    DailyBehaviour,
    DailyEventCount,
    EventBatch,
    Participant,
    RecruitmentSource,
)
from participants.services import withdraw_participant
from tests.asgi import AsgiClient
from tests.participants.conftest import install_page_secrets, sign_up
from tests.threads import run_at_once

# The ASGI route answers on its own connections, which see only committed rows.
pytestmark = pytest.mark.django_db(transaction=True)

Api = Client | AsgiClient


@pytest.fixture(params=["view", "asgi"])
def api(request: pytest.FixtureRequest) -> Api:
    """The DRF view (the test client, other servers) and the ASGI app uvicorn serves: one contract."""
    return Client() if request.param == "view" else AsgiClient()


def register(client: Client, source: RecruitmentSource, document: ConsentDocument, pid: str = "ev-1") -> str:
    sign_up(client, source, pid, document)
    code, _ = install_page_secrets(client)
    body = {"enrolment_code": code, "install_key": f"install-{pid}", "extension_version": "2.1.0"}
    return str(client.post("/api/v1/extension/register", body, content_type="application/json").json()["token"])


@pytest.fixture
def token(client: Client, source: RecruitmentSource, consent_doc: ConsentDocument) -> str:
    return register(client, source, consent_doc)


def send(client: Api, token: str, events: list[Any], batch_key: str = "batch-0001", **extra: Any) -> Any:
    return client.post(
        "/api/v1/extension/events",
        {"batch_key": batch_key, "events": events, **extra},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def at(minutes_ago: float = 1) -> str:
    return (timezone.now() - dt.timedelta(minutes=minutes_ago)).isoformat()


def view(item: str = "t3_a", platform: str = "reddit", **extra: Any) -> dict[str, Any]:
    return {"kind": "view", "platform": platform, "at": at(), "item_id": item, **extra}


def test_a_batch_of_views_engagements_and_pings_is_stored_with_its_version(api: Api, token: str) -> None:
    batch = [
        view(),
        {"kind": "engagement", "platform": "reddit", "at": at(), "item_id": "t3_a", "action": "upvote"},
        {"kind": "activity", "platform": "facebook", "at": at(), "active_page": True, "user_active": False},
    ]
    response = send(api, token, batch)
    assert response.status_code == 200
    assert response.json() == {"batch_key": "batch-0001", "accepted": 3, "rejected": [], "repeat": False}
    stored = BehaviourEvent.objects.order_by("kind")
    assert [(e.kind, e.action, e.platform, e.active_page) for e in stored] == [
        ("activity", "", "facebook", True), ("engagement", "upvote", "reddit", None), ("view", "", "reddit", None),
    ]  # fmt: skip
    participant = Participant.objects.get()
    assert {(e.participant_id, e.study_id, e.extension_version) for e in stored} == {
        (participant.pk, participant.study_id, "2.1.0")
    }


def test_a_repeated_batch_key_is_stored_once_and_answered_as_the_first_time(api: Api, token: str) -> None:
    first = send(api, token, [view("a"), {"kind": "scroll", "platform": "reddit", "at": at()}])
    again = send(api, token, [view("a"), view("b"), view("c")])
    assert first.json()["accepted"] == again.json()["accepted"] == 1
    assert again.json()["rejected"] == first.json()["rejected"]
    assert (first.json()["repeat"], again.json()["repeat"]) == (False, True)
    assert BehaviourEvent.objects.count() == 1
    assert EventBatch.objects.count() == 1


def test_bad_events_are_refused_one_by_one_with_a_reason_while_the_rest_are_stored(api: Api, token: str) -> None:
    batch = [
        view("kept-1"),
        {"kind": "hover", "platform": "reddit", "at": at(), "item_id": "x"},
        view("x", user_id="p_someone_else"),
        view("x", at=(timezone.now() + dt.timedelta(days=1)).isoformat()),
        view("x", at="2019-01-01T00:00:00+00:00"),
        view("x", at="yesterday"),
        view("x", at="2026-01-01T00:00:00"),
        {"kind": "engagement", "platform": "reddit", "at": at(), "item_id": "x", "action": "teleport"},
        view("x", platform="myspace"),
        view(""),
        "not an object",
        {"kind": "activity", "platform": "twitter", "at": at(), "active_page": "yes"},
        view("kept-2", user_id=Participant.objects.get().public_id),
    ]
    response = send(api, token, batch)
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 2
    assert [(r["index"], r["code"], r["field"]) for r in body["rejected"]] == [
        (1, "unknown_type", "kind"),
        (2, "unknown_participant", "user_id"),
        (3, "impossible_timestamp", "at"),
        (4, "impossible_timestamp", "at"),
        (5, "invalid_timestamp", "at"),
        (6, "invalid_timestamp", "at"),
        (7, "unknown_type", "action"),
        (8, "invalid", "platform"),
        (9, "invalid", "item_id"),
        (10, "invalid", None),
        (11, "invalid", None),
    ]
    assert all(r["message"] for r in body["rejected"])
    assert sorted(BehaviourEvent.objects.values_list("item_id", flat=True)) == ["kept-1", "kept-2"]
    assert EventBatch.objects.get().rejected == body["rejected"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"events": [view()]}, "batch_key"), ({"batch_key": "batch-0002", "events": []}, "events"),
     ({"batch_key": "batch-0003", "events": {"kind": "view"}}, "events"),
     ({"batch_key": "batch-0004", "events": [view()] * (MAX_BATCH + 1)}, "events")],
)  # fmt: skip
def test_a_batch_without_a_key_or_a_list_of_events_is_refused_whole(
    api: Api, token: str, body: dict[str, Any], field: str
) -> None:
    response = api.post(
        "/api/v1/extension/events", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
    assert not BehaviourEvent.objects.exists()


def test_events_without_a_valid_token_are_refused(api: Api, token: str) -> None:
    assert send(api, "not-a-token", [view()]).status_code == 401
    assert not BehaviourEvent.objects.exists()


def test_a_withdrawn_participant_s_events_are_refused(api: Api, token: str) -> None:
    participant = Participant.objects.get()
    withdraw_participant(participant=participant, by=participant)
    response = send(api, token, [view()])
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "withdrawn"
    assert not BehaviourEvent.objects.exists()


def test_withdrawal_under_delete_terms_erases_events_batches_and_daily_rows(
    client: Client, source: RecruitmentSource
) -> None:
    document = ConsentDocument.objects.create(
        study=source.study, version="2.0", text="t", questions=["I agree"],
        effective_at=timezone.now() - dt.timedelta(days=1), on_withdrawal=ConsentDocument.OnWithdrawal.DELETE,
    )  # fmt: skip
    leaving = register(client, source, document, pid="leaving")
    staying = register(Client(), source, document, pid="staying")
    for token in (leaving, staying):
        assert send(client, token, [view("a"), view("b")]).json()["accepted"] == 2
    # The events are a minute old: their day, not today's (they differ just after local midnight).
    sent_on = (timezone.now() - dt.timedelta(minutes=1)).astimezone(ZoneInfo(source.study.timezone)).date()
    events.rollup_behaviour_day(study=source.study, day=sent_on)
    participant = Participant.objects.get(vendor_pid="leaving")
    assert DailyBehaviour.objects.filter(participant=participant).exists()

    withdraw_participant(participant=participant, by=participant)

    assert not BehaviourEvent.objects.filter(participant_id=participant.pk).exists()
    assert not EventBatch.objects.filter(participant=participant).exists()
    assert not DailyBehaviour.objects.filter(participant=participant).exists()
    assert BehaviourEvent.objects.count() == 2  # the other participant's stay


def test_stored_events_cannot_be_changed(client: Client, token: str) -> None:
    send(client, token, [view()])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        BehaviourEvent.objects.update(item_id="rewritten")


def test_events_land_in_the_partition_of_their_month(client: Client, token: str) -> None:
    send(client, token, [view()])
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM participants_behaviourevent")
        assert cursor.fetchone()[0] == f"participants_behaviourevent_{timezone.now():%Y_%m}"
    assert events.ensure_partitions(months_ahead=3) == 0  # the migration made them already; a rerun adds none
    assert events.ensure_partitions(months_ahead=5) == 2


@pytest.mark.parametrize("route", [Client, AsgiClient])
def test_the_same_batch_sent_at_once_from_four_connections_is_stored_once(
    source: RecruitmentSource, consent_doc: ConsentDocument, route: type[Api]
) -> None:
    token = register(Client(), source, consent_doc)
    answers = run_at_once(4, lambda _: send(route(), token, [view("a"), view("b")]).json())
    assert sorted(answer["repeat"] for answer in answers) == [False, True, True, True]  # type: ignore[index]
    assert BehaviourEvent.objects.count() == 2


def test_the_rollup_counts_active_minutes_views_and_engagements_and_can_run_twice(client: Client, token: str) -> None:
    participant = Participant.objects.get()
    Participant.objects.filter(pk=participant.pk).update(created_at=timezone.now() - dt.timedelta(days=2))
    study = participant.study
    study.timezone = "UTC"
    study.save(update_fields=["timezone"])
    start = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    if start > timezone.now():
        start -= dt.timedelta(days=1)
    ping = {"kind": "activity", "platform": "facebook", "active_page": True}
    batch = [
        {**ping, "at": (start + dt.timedelta(seconds=5)).isoformat(), "user_active": True},  # active
        {**ping, "at": (start + dt.timedelta(minutes=1)).isoformat(), "user_active": False},  # on the page, idle
        {**ping, "at": (start + dt.timedelta(minutes=2)).isoformat(), "user_active": False},  # ... but a view
        view("fb-1", platform="facebook", at=(start + dt.timedelta(minutes=2, seconds=30)).isoformat()),
        {"kind": "engagement", "platform": "facebook", "at": (start + dt.timedelta(minutes=2)).isoformat(),
         "item_id": "fb-1", "action": "like"},
    ]  # fmt: skip
    assert send(client, token, batch).json()["accepted"] == 5
    day = start.date()
    for _ in range(2):
        events.rollup_behaviour_day(study=study, day=day)
    row = DailyBehaviour.objects.get()
    assert (row.day, row.platform, row.active_minutes, row.views, row.engagements) == (day, "facebook", 2, 1, 1)
    counts = {(c.kind, c.extension_version): c.events for c in DailyEventCount.objects.filter(day=day)}
    assert counts == {("activity", "2.1.0"): 3, ("view", "2.1.0"): 1, ("engagement", "2.1.0"): 1}


def test_the_openapi_schema_describes_the_events_endpoint(client: Client) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/extension/events"]["post"]
    assert "extensionToken" in str(operation["security"])
    assert "EventInput" in str(schema["components"]["schemas"])


def test_the_rollup_command_recomputes_a_range_of_days_and_refuses_a_reversed_one(client: Client, token: str) -> None:
    send(client, token, [view()])
    study = Participant.objects.get().study
    today = timezone.now().astimezone(ZoneInfo(study.timezone)).date()
    out = StringIO()
    call_command("rollup_behaviour", "--start", str(today - dt.timedelta(days=1)), "--end", str(today), stdout=out)
    assert "over 2 days" in out.getvalue()
    assert DailyBehaviour.objects.get().views == 1
    with pytest.raises(CommandError, match="--start must not be after --end"):
        call_command("rollup_behaviour", "--start", str(today), "--end", str(today - dt.timedelta(days=1)))
