"""A ranker that fails in any way costs the participant nothing: original order, intervention off, reason logged."""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from typing import ClassVar

import orjson
import pytest
import redis
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from participants.models import Participant
from rankers.models import Slate
from rankers.plugins import NewItem, RankContext, RankResult, SlateItem, register
from tests.rankers.conftest import post_rank, prc_request, valid_response

pytestmark = pytest.mark.django_db(transaction=True)


class _Base:
    name: ClassVar[str]
    attributes: ClassVar[tuple[str, ...]] = ()


@register("test_raises")
class RaisingRanker(_Base):
    def rank(self, items: Sequence[SlateItem], context: RankContext) -> RankResult:
        raise RuntimeError("secret internal detail")


# The blocking ranker finishes only once this is set (after each test), so its timeout does not depend on how
# fast the machine is; the other rankers run under the wide budget that the ``enrol`` fixture sets.
RELEASE_BLOCKED = threading.Event()


@pytest.fixture(autouse=True)
def _release_blocked_ranker() -> Iterator[None]:
    RELEASE_BLOCKED.clear()
    yield
    RELEASE_BLOCKED.set()


@register("test_blocks")
class BlockingRanker(_Base):
    def rank(self, items: Sequence[SlateItem], context: RankContext) -> RankResult:
        RELEASE_BLOCKED.wait(timeout=30)
        return RankResult(ranked_ids=[i.id for i in reversed(items)])


@register("test_bad_output")
class BadOutputRanker(_Base):
    def rank(self, items: Sequence[SlateItem], context: RankContext) -> RankResult:
        return [i.id for i in items]  # type: ignore[return-value]  # a list, not a RankResult


@register("test_int_ids")
class IntegerIdRanker(_Base):
    def rank(self, items: Sequence[SlateItem], context: RankContext) -> RankResult:
        return RankResult(ranked_ids=[*range(len(items))])  # type: ignore[list-item]


@register("test_duplicates")
class DuplicatingRanker(_Base):
    def rank(self, items: Sequence[SlateItem], context: RankContext) -> RankResult:
        return RankResult(ranked_ids=[items[0].id, *[i.id for i in items]])


@register("test_unknown")
class UnknownIdRanker(_Base):
    def rank(self, items: Sequence[SlateItem], context: RankContext) -> RankResult:
        return RankResult(ranked_ids=["made-up", *[i.id for i in items]])


@register("test_empty")
class EmptyRanker(_Base):
    def rank(self, items: Sequence[SlateItem], context: RankContext) -> RankResult:
        return RankResult(ranked_ids=[])


@register("test_inserts")
class InsertingRanker(_Base):
    url = "https://news.example.org/story"

    def rank(self, items: Sequence[SlateItem], context: RankContext) -> RankResult:
        new = NewItem(id="news-1", url=self.url)
        return RankResult(ranked_ids=[items[0].id, new.id, *[i.id for i in items[1:]]], new_items=[new])


@register("test_inserts_private")
class PrivateInsertingRanker(InsertingRanker):
    url = "http://127.0.0.1/admin"


class AsyncRanker(_Base):
    async def arank(self, items: Sequence[SlateItem], context: RankContext) -> RankResult:
        return RankResult(ranked_ids=[i.id for i in reversed(items)])


register("test_async")(AsyncRanker)


async def _slate(public_id: str) -> Slate:
    return await Slate.objects.aget(participant_id=public_id)


async def assert_fell_back(async_client: AsyncClient, participant: Participant, token: str, reason: str) -> None:
    body = prc_request(participant.public_id, n_posts=8)

    raw = await post_rank(async_client, token, body)
    response = valid_response(raw)

    assert response.ranked_ids == [i["id"] for i in body["items"]]
    assert response.new_items == []
    assert response.metadata is not None
    assert response.metadata.intervention_on is False
    assert b"secret" not in raw.content
    slate = await _slate(participant.public_id)
    assert slate.fallback_reason == reason
    assert slate.intervention_on is False
    assert slate.nrc == 0.0
    assert slate.added_ids == []


@pytest.mark.parametrize(
    ("ranker_key", "reason"),
    [
        ("test_raises", "exception"),
        ("test_bad_output", "bad_output"),
        ("test_int_ids", "bad_output"),
        ("test_duplicates", "duplicate_ids"),
        ("test_unknown", "unknown_ids"),
        ("test_empty", "empty_result"),
        ("test_inserts_private", "bad_inserted_item"),
        ("no_such_ranker", "unknown_ranker"),
    ],
)
async def test_failing_ranker_falls_back_to_the_original_order(
    async_client: AsyncClient, enrol, ranker_key: str, reason: str
) -> None:
    participant, token = await enrol(ranker_key)

    await assert_fell_back(async_client, participant, token, reason)


async def test_ranker_past_its_budget_falls_back_on_timeout(async_client: AsyncClient, enrol) -> None:
    participant, token = await enrol("test_blocks", ranker_config={"budget_ms": 100})

    await assert_fell_back(async_client, participant, token, "timeout")
    assert not RELEASE_BLOCKED.is_set()  # the ranker was still running when the feed went back


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/p",
        "https://feed.localhost/p",
        "https://printer.local/p",
        "https://metadata.google.internal/computeMetadata/v1/",
        "https://intranet/p",
        "http://10.0.0.7/p",
        "http://192.168.1.1/p",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/p",
        "ftp://news.example.org/p",
    ],
)
async def test_inserted_item_on_an_internal_host_falls_back(
    async_client: AsyncClient, enrol, monkeypatch, url: str
) -> None:
    monkeypatch.setattr(PrivateInsertingRanker, "url", url)
    participant, token = await enrol("test_inserts_private")

    await assert_fell_back(async_client, participant, token, "bad_inserted_item")


def fallbacks_counted(text: str, reason: str) -> float:
    match = re.search(rf'^prc_rank_fallbacks_total\{{reason="{reason}"\}} (\S+)$', text, re.MULTILINE)
    return float(match[1]) if match else 0.0


async def test_each_fallback_is_counted_in_the_metrics(async_client: AsyncClient, enrol, settings) -> None:
    settings.METRICS_TOKEN = "scrape-secret"
    scrape = {"headers": {"Authorization": "Bearer scrape-secret"}}
    before = (await async_client.get("/metrics", **scrape)).content.decode()
    participant, token = await enrol("test_duplicates")

    for _ in range(2):
        valid_response(await post_rank(async_client, token, prc_request(participant.public_id, n_posts=3)))
    after = (await async_client.get("/metrics", **scrape)).content.decode()

    assert fallbacks_counted(after, "duplicate_ids") == fallbacks_counted(before, "duplicate_ids") + 2
    assert fallbacks_counted(after, "exception") == fallbacks_counted(before, "exception")


async def test_inserted_public_post_is_shown_and_logged_as_added(async_client: AsyncClient, enrol) -> None:
    participant, token = await enrol("test_inserts")
    body = prc_request(participant.public_id, n_posts=4)
    ids = [i["id"] for i in body["items"]]

    response = valid_response(await post_rank(async_client, token, body))

    assert response.ranked_ids == [ids[0], "news-1", *ids[1:]]
    assert [str(n.url) for n in response.new_items or []] == ["https://news.example.org/story"]
    slate = await _slate(participant.public_id)
    assert slate.added_ids == ["news-1"]
    assert slate.n_added == 1
    assert slate.intervention_on is True


async def test_async_ranker_is_awaited(async_client: AsyncClient, enrol) -> None:
    participant, token = await enrol("test_async")
    body = prc_request(participant.public_id, n_posts=3)

    response = valid_response(await post_rank(async_client, token, body))

    assert response.ranked_ids == [i["id"] for i in reversed(body["items"])]


async def test_unreachable_database_still_gets_the_untouched_feed_and_its_slate_waits_in_redis(
    async_client: AsyncClient, enrol, monkeypatch, settings
) -> None:
    from prc_site.lib import asyncdb
    from rankers import slatelog

    settings.RANK_FALLBACK_KEY = key = f"test:slate_fallback:{uuid.uuid4().hex}"
    participant, token = await enrol("control")
    await asyncdb.close_loop_pool()  # no pooled connection survives: the next connect must fail
    monkeypatch.setattr(asyncdb, "connection_kwargs", lambda: {"host": "/nonexistent", "dbname": "prc"})
    body = prc_request(participant.public_id, n_posts=3)

    response = valid_response(await post_rank(async_client, token, body))
    if slatelog._writes:  # the late lookup fails too: to Redis, unattributed
        await asyncio.wait(set(slatelog._writes), timeout=60)

    assert response.ranked_ids == [i["id"] for i in body["items"]]
    assert await sync_to_async(Slate.objects.count)() == 0
    client = redis.Redis.from_url(slatelog.redis_url())
    try:
        waiting = [orjson.loads(raw) for raw in client.lrange(key, 0, -1)]
        assert [(s["participant_id"], s["original_ids"]) for s in waiting] == [("", response.ranked_ids)]
        monkeypatch.undo()  # the database is back: the drain attributes and stores it
        assert await sync_to_async(slatelog.drain_fallback)() == 1
        slate = await Slate.objects.aget()
        assert (slate.participant_id, slate.fallback_reason) == (participant.public_id, "lookup_failed")
    finally:
        client.delete(key, key + ":processing", key + ":failed")
