"""The slate log under bad values and repeated work: no poisoned batches, no slate stored twice."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator

import orjson
import pytest
import redis
from django.db import connections
from django.test import AsyncClient
from django.utils import timezone

from rankers import slatelog
from rankers.models import ContentItem, DailyArmRollup, Slate
from rankers.rollups import rollup_study_day
from tests.factories import StudyFactory
from tests.rankers.conftest import item, post_rank, request_with, valid_response

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fallback_key(settings) -> Iterator[str]:
    settings.RANK_FALLBACK_KEY = key = f"test:slate_fallback:{uuid.uuid4().hex}"
    yield key
    redis.Redis.from_url(slatelog.redis_url()).delete(key, key + ":processing", key + ":failed", key + ":lock")


def _fallback(key: str) -> list[bytes]:
    return redis.Redis.from_url(slatelog.redis_url()).lrange(key, 0, -1)


def _record(participant_id: str, *, served_at: str | None = None, study_id: int = 1) -> slatelog.SlateRecord:
    item_id = f"{participant_id}-item"
    row = slatelog.ContentRow(platform="reddit", item_id=item_id, text_hash="h" * 64, type="post", post_id="",
                              parent_id="", title="", text="words", author_name_hash="a", created_at=None,
                              embedded_urls=[])  # fmt: skip
    return slatelog.SlateRecord(
        served_at=served_at or timezone.now().isoformat(), participant_id=participant_id, study_id=study_id,
        arm="control", effective_arm="control", ranker_key="control", platform="reddit", content_type="post",
        session_id="s", original_ids=[item_id], original_hashes=[row.text_hash], returned_ids=[item_id],
        added_ids=[], deleted_ids=[], invalid_items={}, ranker_ms=0.1, served_ms=1.0, fallback_reason="",
        intervention_on=False, prefetch=False, nrc=0.0, rbo=1.0, n_items=1, n_added=0, n_deleted=0, content=[row],
    )  # fmt: skip


async def test_a_300_character_session_id_and_item_id_are_logged_with_the_slates_served_beside_them(
    async_client: AsyncClient, enrol, fallback_key: str
) -> None:
    careless, careless_token = await enrol("reverse")
    others = [await enrol("reverse") for _ in range(3)]
    long_id = "x" * 300
    careless_body = request_with(
        careless.public_id, [item(long_id), item("b", parent_id="p" * 300)], session_id="s" * 300
    )

    responses = await asyncio.gather(
        post_rank(async_client, careless_token, careless_body),
        *(post_rank(async_client, token, request_with(p.public_id, [item("a"), item("b")])) for p, token in others),
    )

    assert valid_response(responses[0]).ranked_ids == ["b", long_id]  # the answer keeps the id as sent
    assert all(valid_response(r).ranked_ids == ["b", "a"] for r in responses[1:])
    assert await Slate.objects.filter(participant_id__in=[p.public_id for p, _ in others]).acount() == 3
    slate = await Slate.objects.aget(participant_id=careless.public_id)
    stored_id = slate.original_ids[0]
    assert len(stored_id) == len(slate.session_id) == 255
    assert stored_id.startswith("x" * 100)
    assert slate.returned_ids == ["b", stored_id]
    assert await ContentItem.objects.filter(item_id=stored_id).aexists()  # the slate's ids still find their content
    assert _fallback(fallback_key) == []


async def test_two_long_ids_that_share_their_first_255_characters_stay_distinct(
    async_client: AsyncClient, enrol, fallback_key: str
) -> None:
    participant, token = await enrol("control")
    ids = ["y" * 300 + "1", "y" * 300 + "2"]

    valid_response(await post_rank(async_client, token, request_with(participant.public_id, [item(i) for i in ids])))

    slate = await Slate.objects.aget(participant_id=participant.public_id)
    assert len(set(slate.original_ids)) == 2


async def test_a_slate_postgresql_refuses_fails_alone_and_its_batch_is_stored(fallback_key: str) -> None:
    good = [_record(f"p-good-{i}") for i in range(3)]
    bad = _record("p-bad", study_id=2**40)  # out of the integer column's range: PostgreSQL refuses the row

    await asyncio.gather(*(slatelog.write_slate(record) for record in [good[0], bad, *good[1:]]))

    assert await Slate.objects.filter(participant_id__startswith="p-good-").acount() == 3
    assert not await Slate.objects.filter(participant_id="p-bad").aexists()
    assert [slatelog.SlateRecord.from_json(raw).participant_id for raw in _fallback(fallback_key)] == ["p-bad"]


def _push(key: str, records: list[slatelog.SlateRecord]) -> None:
    redis.Redis.from_url(slatelog.redis_url()).rpush(key, *(record.to_json() for record in records))


def test_two_drains_at_once_store_every_slate_exactly_once(fallback_key: str) -> None:
    records = [_record(f"p-drain-{i}") for i in range(300)]
    _push(fallback_key, records)
    results: list[int] = []
    start = threading.Barrier(2)

    def drain() -> None:
        start.wait()
        try:
            results.append(slatelog.drain_fallback(limit=5000))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=drain) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results)[-1] + sorted(results)[0] == 300
    assert Slate.objects.filter(participant_id__startswith="p-drain-").count() == 300
    assert _fallback(fallback_key) == []


def test_a_slate_drained_twice_is_stored_and_rolled_up_once(fallback_key: str) -> None:
    study = StudyFactory()
    record = _record("p-twice", study_id=study.pk)
    _push(fallback_key, [record, record])  # e.g. pushed on a time-out while the writer still stored it

    assert slatelog.drain_fallback() == 2
    _push(fallback_key, [record])
    slatelog.drain_fallback()

    assert Slate.objects.filter(participant_id="p-twice").count() == 1
    rollup_study_day(study_id=study.pk, day=timezone.now().date(), tz_name="UTC")
    assert sum(DailyArmRollup.objects.filter(study=study).values_list("slates", flat=True)) == 1


def test_a_drain_started_while_another_holds_the_lock_leaves_the_list_alone(fallback_key: str) -> None:
    _push(fallback_key, [_record("p-waiting")])
    client = redis.Redis.from_url(slatelog.redis_url())
    with client.lock(fallback_key + ":lock", timeout=60):
        assert slatelog.drain_fallback() == 0
        assert len(_fallback(fallback_key)) == 1

    assert slatelog.drain_fallback() == 1


class GatedDatabase:
    """A Unix-socket relay in front of the test database that holds every byte until ``open()``: a slow database."""

    def __init__(self, folder: str) -> None:
        params = connections["default"].settings_dict
        self.target = f"{params['HOST']}/.s.PGSQL.{params['PORT'] or 5432}"
        self.folder = folder
        self.url = f"postgresql://{params['USER'] or 'postgres'}@/{params['NAME']}?host={folder}&port=6543"
        self.gate = asyncio.Event()
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_unix_server(self._relay, path=f"{self.folder}/.s.PGSQL.6543")

    def open(self) -> None:
        self.gate.set()

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_unix_connection(self.target)

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while data := await reader.read(65536):
                await self.gate.wait()
                writer.write(data)
                await writer.drain()
            writer.close()

        await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w), return_exceptions=True)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()


async def test_a_slow_write_does_not_hold_the_answer_and_still_stores_its_slate(
    async_client: AsyncClient, enrol, settings, fallback_key: str, tmp_path
) -> None:
    participant, token = await enrol("reverse")
    settings.RANK_WRITE_GRACE_S = 0.0  # answer at the hold (0 ms here) whatever the write is doing
    slow = GatedDatabase(str(tmp_path))
    await slow.start()
    settings.RANK_WRITER_DATABASE_URL = slow.url
    try:
        response = valid_response(
            await post_rank(async_client, token, request_with(participant.public_id, [item("a"), item("b")]))
        )

        assert response.ranked_ids == ["b", "a"]  # answered while the database had not even seen the write
        assert not await Slate.objects.filter(participant_id=participant.public_id).aexists()
        assert len(slatelog._writes) == 1  # the write goes on without its request

        slow.open()
        await asyncio.wait(set(slatelog._writes), timeout=60)
    finally:
        slow.open()
        await slatelog.close_writer()
        await slow.close()

    [slate] = [s async for s in Slate.objects.filter(participant_id=participant.public_id)]
    assert slate.returned_ids == ["b", "a"]
    assert _fallback(fallback_key) == []  # stored by the writer itself, not given up to Redis


async def test_a_write_that_never_ends_reaches_the_redis_fallback_after_the_write_timeout(
    async_client: AsyncClient, enrol, settings, fallback_key: str, tmp_path
) -> None:
    participant, token = await enrol("reverse")
    settings.RANK_WRITE_GRACE_S = 0.0
    settings.RANK_WRITE_TIMEOUT_S = 0.5
    stuck = GatedDatabase(str(tmp_path))  # never opened: a paused database
    await stuck.start()
    settings.RANK_WRITER_DATABASE_URL = stuck.url
    try:
        response = valid_response(
            await post_rank(async_client, token, request_with(participant.public_id, [item("a"), item("b")]))
        )
        assert response.ranked_ids == ["b", "a"]
        await asyncio.wait(set(slatelog._writes), timeout=60)
    finally:
        await slatelog.close_writer()
        await stuck.close()

    [pushed] = _fallback(fallback_key)
    assert orjson.loads(pushed)["returned_ids"] == ["b", "a"]


async def test_closing_the_writer_stores_the_slates_it_still_holds(fallback_key: str) -> None:
    records = [_record(f"p-shutdown-{n}") for n in range(3)]
    for record in records:
        slatelog.start_write(record)  # answered requests whose writes have not run yet

    await slatelog.close_writer()  # what the web server's lifespan does at shutdown

    stored = {s.participant_id async for s in Slate.objects.filter(participant_id__startswith="p-shutdown-")}
    assert stored == {record.participant_id for record in records}
    assert _fallback(fallback_key) == []
    assert not slatelog._writes
