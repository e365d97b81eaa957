"""The events endpoint under overload (ASGI path): a clear 503 with Retry-After, never a 500, nothing lost."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import psycopg
import pytest
from django.db import connections
from django.test import Client

from participants import events_asgi
from participants.models import BehaviourEvent, ConsentDocument, Participant, RecruitmentSource
from prc_site.lib.asyncdb import connection_kwargs
from tests.asgi import AsgiResponse, acall, close_loop_connections
from tests.participants.test_events import register, view

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def token(source: RecruitmentSource, consent_doc: ConsentDocument) -> str:
    return register(Client(), source, consent_doc)


@pytest.fixture
def participant_row_locked(token: str) -> Iterator[psycopg.Connection[Any]]:
    """Another session holds the participant's row FOR UPDATE: every insert of a batch waits for it."""
    locker = psycopg.connect(**connection_kwargs())
    locker.execute("SELECT 1 FROM participants_participant WHERE id = %s FOR UPDATE", [Participant.objects.get().pk])
    yield locker
    locker.close()


def post(token: str, batch_key: str, n: int = 3) -> Any:
    body = orjson.dumps({"batch_key": batch_key, "events": [view(f"item-{i}") for i in range(n)]})
    return acall("POST", "/api/v1/extension/events", body, {"Authorization": f"Bearer {token}"})


def busy(response: AsgiResponse) -> bool:
    return (
        response.status_code == 503
        and response.headers["retry-after"] == "5"
        and response.json()["error"]["code"] == "busy"
    )


def test_a_batch_past_the_in_flight_limit_is_told_to_retry_and_the_one_in_hand_is_stored(
    token: str, participant_row_locked: psycopg.Connection[Any], settings: Any
) -> None:
    settings.EVENTS_MAX_IN_FLIGHT, settings.EVENTS_RETRY_AFTER_S = 1, 5

    async def scenario() -> tuple[AsgiResponse, AsgiResponse, AsgiResponse]:
        try:
            held = asyncio.ensure_future(post(token, "batch-held"))
            while events_asgi.gate().inside < 1:  # the first batch is in hand, its insert waiting on the lock
                await asyncio.sleep(0.005)
            refused = await post(token, "batch-extra")
            participant_row_locked.commit()
            stored = await held
            retried = await post(token, "batch-extra")
            return refused, stored, retried
        finally:
            await close_loop_connections()

    refused, stored, retried = asyncio.run(scenario())

    assert busy(refused)
    assert (stored.status_code, stored.json()["accepted"]) == (200, 3)
    assert (retried.status_code, retried.json()["accepted"], retried.json()["repeat"]) == (200, 3, False)
    assert BehaviourEvent.objects.count() == 6


def test_a_batch_that_cannot_be_stored_in_time_is_told_to_retry_and_its_retry_is_stored_once(
    token: str, participant_row_locked: psycopg.Connection[Any], settings: Any
) -> None:
    settings.EVENTS_DB_TIMEOUT_S, settings.EVENTS_RETRY_AFTER_S = 0.3, 5

    async def scenario() -> tuple[AsgiResponse, AsgiResponse]:
        try:
            late = await post(token, "batch-late")
            participant_row_locked.commit()
            settings.EVENTS_DB_TIMEOUT_S = 30
            return late, await post(token, "batch-late")
        finally:
            await close_loop_connections()

    late, retried = asyncio.run(scenario())

    assert busy(late)
    assert (retried.status_code, retried.json()["accepted"]) == (200, 3)  # a repeat or not: the insert may have run
    assert BehaviourEvent.objects.count() == 3


def test_a_database_that_refuses_connections_is_a_503_not_a_500(token: str, settings: Any) -> None:
    settings.EVENTS_RETRY_AFTER_S = 5
    database = connections["default"].settings_dict
    real_host = database["HOST"]
    database["HOST"] = "/nonexistent-socket-dir"
    try:

        async def scenario() -> AsgiResponse:
            try:
                return await post(token, "batch-nodb")
            finally:
                await events_asgi.shutdown()

        response = asyncio.run(scenario())
    finally:
        database["HOST"] = real_host

    assert busy(response)
    assert not BehaviourEvent.objects.exists()
