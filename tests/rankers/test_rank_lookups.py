"""Participant lookups on the ranking path: concurrent ones share one query, and nothing is cached."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import orjson
import psycopg
import pytest
from asgiref.sync import sync_to_async

from participants.models import sha256_hex
from participants.services import withdraw_participant
from prc_site.lib.asyncdb import Coalescer, LoopPool, loop_pool, per_loop
from rankers import serving
from tests.rankers.conftest import prc_request
from tests.rankers.test_rank_asgi import call_asgi

pytestmark = pytest.mark.django_db(transaction=True)


def _lookups() -> Coalescer[str, dict[str, object]]:
    return per_loop(serving._lookups, lambda: Coalescer(serving._fetch_enrolments))


async def test_concurrent_lookups_share_one_query_and_each_gets_its_own_participant(enrol) -> None:
    (first, first_token), (second, second_token) = await enrol(), await enrol()
    hashes = [sha256_hex(first_token), sha256_hex(second_token), sha256_hex(first_token), sha256_hex("no-such-token")]
    before = _lookups().batches

    found = await asyncio.gather(*(serving.load_enrolment(h) for h in hashes))

    assert [e.public_id if e else None for e in found] == [first.public_id, second.public_id, first.public_id, None]
    assert _lookups().batches == before + 1


async def test_lookups_in_later_turns_make_their_own_query(enrol) -> None:
    _participant, token = await enrol()
    before = _lookups().batches

    await serving.load_enrolment(sha256_hex(token))
    await serving.load_enrolment(sha256_hex(token))

    assert _lookups().batches == before + 2


async def test_a_withdrawal_shows_on_the_very_next_lookup(enrol) -> None:
    participant, token = await enrol()
    assert (await serving.load_enrolment(sha256_hex(token))).withdrawn is False

    assert await sync_to_async(withdraw_participant)(participant=participant, by=None, reason="by the study")

    assert (await serving.load_enrolment(sha256_hex(token))).withdrawn is True


async def test_a_failed_batch_fails_every_waiter_and_the_next_batch_runs() -> None:
    calls: list[list[str]] = []

    async def fetch(keys: Sequence[str]) -> dict[str, str]:
        calls.append(list(keys))
        if len(calls) == 1:
            raise psycopg.OperationalError("connection lost")
        return {key: key.upper() for key in keys}

    coalescer: Coalescer[str, str] = Coalescer(fetch)
    outcomes = await asyncio.gather(coalescer.get("a"), coalescer.get("b"), return_exceptions=True)
    assert all(isinstance(outcome, psycopg.OperationalError) for outcome in outcomes)

    assert await asyncio.gather(coalescer.get("c"), coalescer.get("d")) == ["C", "D"]
    assert calls == [["a", "b"], ["c", "d"]]


async def test_simultaneous_rank_requests_are_each_answered_for_their_own_participant(enrol) -> None:
    people = [await enrol() for _ in range(4)]
    requests = [
        call_asgi(
            "POST",
            "/rank",
            orjson.dumps(prc_request(participant.public_id, n_posts=5)),
            {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        for participant, token in people
    ]
    # The other participant's token with this user_id must still be refused.
    (first, _), (_, second_token) = people[0], people[1]
    requests.append(
        call_asgi(
            "POST",
            "/rank",
            orjson.dumps(prc_request(first.public_id, n_posts=5)),
            {"Content-Type": "application/json", "Authorization": f"Bearer {second_token}"},
        )
    )

    answers = await asyncio.gather(*requests)

    assert [status for status, _headers, _body in answers] == [200, 200, 200, 200, 403]


async def test_hot_path_connections_keep_generic_plans() -> None:
    async with loop_pool().connection() as conn:
        cursor = await conn.execute("SHOW plan_cache_mode")
        assert await cursor.fetchone() == ("force_generic_plan",)


async def test_a_broken_connection_takes_the_idle_ones_broken_with_it_so_the_retry_reconnects() -> None:
    pool = LoopPool(4)
    async with pool.connection() as first, pool.connection() as second:
        pids = {first.info.backend_pid, second.info.backend_pid}
    await sync_to_async(_terminate)(pids)  # what a database restart does to every open connection

    with pytest.raises(psycopg.OperationalError):
        async with pool.connection() as broken:
            await broken.execute("SELECT 1")
    async with pool.connection() as fresh:  # not the other broken one: a new connection
        assert (await (await fresh.execute("SELECT 1")).fetchone()) == (1,)
        assert fresh.info.backend_pid not in pids
    await pool.close()


def _terminate(pids: set[int]) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY(%s)", [list(pids)])
