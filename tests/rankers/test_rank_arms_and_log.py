"""Effective arm, equal hold, and the slate log, through POST /rank."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from participants.models import Arm, ConsentDocument, Study
from participants.services import withdraw_participant
from rankers import slatelog
from rankers.models import ContentItem, Slate
from rankers.tasks_slatelog import drain_slate_fallback, ensure_slate_partitions
from tests.rankers.conftest import item, post_rank, prc_request, request_with, valid_response

pytestmark = pytest.mark.django_db(transaction=True)


async def _slates(public_id: str) -> list[Slate]:
    return [s async for s in Slate.objects.filter(participant_id=public_id).order_by("id")]


async def test_withdrawn_participant_gets_untouched_feed_and_nothing_is_stored(
    async_client: AsyncClient, enrol
) -> None:
    participant, token = await enrol("reverse")
    assert await sync_to_async(withdraw_participant)(participant=participant, by=participant, reason="changed mind")
    body = prc_request(participant.public_id, n_posts=5)

    response = valid_response(await post_rank(async_client, token, body))

    assert response.ranked_ids == [i["id"] for i in body["items"]]
    assert response.metadata is not None
    assert response.metadata.intervention_on is False
    assert await _slates(participant.public_id) == []
    assert await ContentItem.objects.acount() == 0


async def test_participant_without_current_consent_gets_untouched_feed(
    async_client: AsyncClient, enrol, study: Study
) -> None:
    participant, token = await enrol("reverse")
    await ConsentDocument.objects.acreate(study=study, version="2.0", text="New terms.", effective_at=timezone.now())
    body = prc_request(participant.public_id, n_posts=5)

    response = valid_response(await post_rank(async_client, token, body))

    assert response.ranked_ids == [i["id"] for i in body["items"]]
    assert await _slates(participant.public_id) == []


async def test_baseline_participant_is_served_and_logged_as_control(async_client: AsyncClient, enrol) -> None:
    participant, token = await enrol("reverse", past_baseline=False)
    body = prc_request(participant.public_id, n_posts=5)

    response = valid_response(await post_rank(async_client, token, body))

    assert response.ranked_ids == [i["id"] for i in body["items"]]
    [slate] = await _slates(participant.public_id)
    assert (slate.arm, slate.effective_arm, slate.ranker_key) == ("reverse", "control", "control")
    assert slate.intervention_on is False
    assert slate.fallback_reason == ""  # control ran and answered: not a failure that looks like control


async def test_control_arm_is_served_untouched_and_logged_without_a_fallback(async_client: AsyncClient, enrol) -> None:
    participant, token = await enrol("control")
    body = prc_request(participant.public_id, n_posts=5)

    response = valid_response(await post_rank(async_client, token, body))

    assert response.ranked_ids == [i["id"] for i in body["items"]]
    [slate] = await _slates(participant.public_id)
    assert (slate.arm, slate.effective_arm, slate.ranker_key) == ("control", "control", "control")
    assert (slate.intervention_on, slate.fallback_reason, slate.nrc) == (False, "", 0.0)
    assert slate.ranker_ms is not None


async def test_arm_not_yet_started_on_this_platform_is_control(async_client: AsyncClient, enrol) -> None:
    participant, token = await enrol("reverse")
    tomorrow = timezone.now().date() + dt.timedelta(days=1)
    await Arm.objects.filter(slug="reverse").aupdate(starts_twitter=tomorrow)
    body = prc_request(participant.public_id, n_posts=5, platform="twitter")

    response = valid_response(await post_rank(async_client, token, body))

    assert response.ranked_ids == [i["id"] for i in body["items"]]
    [slate] = await _slates(participant.public_id)
    assert (slate.arm, slate.effective_arm, slate.ranker_key) == ("reverse", "control", "control")
    assert (slate.intervention_on, slate.fallback_reason) == (False, "")


async def test_ranked_slate_is_logged_with_rank_change_and_content_once(async_client: AsyncClient, enrol) -> None:
    participant, token = await enrol("reverse")
    body = request_with(participant.public_id, [item("a"), item("b"), item("c"), item("d")], prefetch=True)

    for _ in range(2):
        valid_response(await post_rank(async_client, token, body))

    first, second = await _slates(participant.public_id)
    assert first.original_ids == ["a", "b", "c", "d"]
    assert first.returned_ids == ["d", "c", "b", "a"]
    assert first.nrc == pytest.approx((3 + 1 + 1 + 3) / 4 / 4)
    assert first.rbo is not None
    assert first.rbo < 1
    assert (first.n_items, first.n_added, first.n_deleted) == (4, 0, 0)
    assert first.intervention_on is True
    assert first.prefetch is True
    assert first.ranker_ms is not None
    assert first.served_ms >= 0
    assert first.platform == "reddit"
    assert first.content_type == "post"
    assert second.returned_ids == first.returned_ids
    assert await ContentItem.objects.acount() == 4
    # The second slate did not carry the content again, yet names every item's stored version.
    assert second.original_hashes == first.original_hashes
    stored = {(c.item_id, c.text_hash) async for c in ContentItem.objects.all()}
    assert set(zip(second.original_ids, second.original_hashes, strict=True)) == stored


async def test_invalid_item_reasons_are_logged(async_client: AsyncClient, enrol) -> None:
    participant, token = await enrol("reverse")
    items = [item("a"), item("bad", embedded_urls=["javascript:alert(1)"]), item("c")]

    valid_response(await post_rank(async_client, token, request_with(participant.public_id, items)))

    [slate] = await _slates(participant.public_id)
    assert slate.invalid_items == {"bad": "bad_url"}
    assert slate.returned_ids == ["c", "bad", "a"]


async def test_answer_is_held_until_the_hold_and_ranker_time_is_separate(
    async_client: AsyncClient, enrol, study: Study
) -> None:
    await Study.objects.filter(pk=study.pk).aupdate(rank_hold_ms=1000)
    participant, token = await enrol("control")

    started = time.monotonic()
    valid_response(await post_rank(async_client, token, prc_request(participant.public_id, n_posts=20)))
    elapsed = time.monotonic() - started

    assert elapsed >= 1.0  # a lower bound: the point of the hold, and one a busy machine cannot break
    [slate] = await _slates(participant.public_id)
    assert slate.served_ms >= 999.9
    assert slate.ranker_ms is not None
    # Control ranks 20 items in well under a millisecond; had the hold been counted, this would be >= 1000.
    assert slate.ranker_ms < 1000


async def test_failed_write_goes_to_redis_and_is_drained_into_the_log(
    async_client: AsyncClient, enrol, settings, tmp_path
) -> None:
    settings.RANK_FALLBACK_KEY = f"test:slate_fallback:{uuid.uuid4().hex}"
    participant, token = await enrol("reverse")
    # The writer's database is a socket folder where no server listens; the participant lookup still works.
    settings.RANK_WRITER_DATABASE_URL = f"postgresql://postgres@/prc?host={tmp_path}"
    body = request_with(participant.public_id, [item("a"), item("b")])

    response = valid_response(await post_rank(async_client, token, body))

    assert response.ranked_ids == ["b", "a"]
    assert await _slates(participant.public_id) == []
    moved = await sync_to_async(drain_slate_fallback)()
    assert moved == 1
    [slate] = await _slates(participant.public_id)
    assert slate.returned_ids == ["b", "a"]


def test_slate_partitions_are_created_ahead_and_idempotent() -> None:
    assert ensure_slate_partitions(6) >= 0
    assert ensure_slate_partitions(6) == 0


def _record(participant_id: str, *, served_at: str) -> slatelog.SlateRecord:
    item_id = f"{participant_id}-item"
    row = slatelog.ContentRow(platform="reddit", item_id=item_id, text_hash="h" * 64, type="post", post_id="",
                              parent_id="", title="", text="words", author_name_hash="a", created_at=None,
                              embedded_urls=[])  # fmt: skip
    return slatelog.SlateRecord(
        served_at=served_at, participant_id=participant_id, study_id=1, arm="control", effective_arm="control",
        ranker_key="control", platform="reddit", content_type="post", session_id="s", original_ids=[item_id],
        original_hashes=[row.text_hash], returned_ids=[item_id], added_ids=[], deleted_ids=[], invalid_items={},
        ranker_ms=0.1, served_ms=1.0, fallback_reason="", intervention_on=False, prefetch=False, nrc=0.0, rbo=1.0,
        n_items=1, n_added=0, n_deleted=0, content=[row],
    )  # fmt: skip


async def test_a_batch_the_database_refuses_stores_no_content_and_goes_to_redis(settings) -> None:
    settings.RANK_FALLBACK_KEY = f"test:slate_fallback:{uuid.uuid4().hex}"
    record = _record("p-orphan", served_at="not a time")  # PostgreSQL refuses the slate row
    await slatelog.write_slate(record)

    # The slate and its content, or neither.
    assert not await ContentItem.objects.filter(item_id="p-orphan-item").aexists()
    assert not await Slate.objects.filter(participant_id="p-orphan").aexists()
    import redis.asyncio as aredis

    async with aredis.Redis.from_url(slatelog.redis_url()) as client:
        assert await client.llen(settings.RANK_FALLBACK_KEY) == 1
        await client.delete(settings.RANK_FALLBACK_KEY)


async def test_nul_characters_in_ids_and_text_are_logged_without_them(async_client: AsyncClient, enrol) -> None:
    """PostgreSQL text cannot hold NUL; one such item must not cost its batch the log."""
    participant, token = await enrol("reverse")
    body = request_with(participant.public_id, [item("a\x00b", text="odd\x00text", title="t\x00"), item("c")])

    response = valid_response(await post_rank(async_client, token, body))

    assert response.ranked_ids == ["c", "a\x00b"]  # the feed is answered with the ids as sent
    [slate] = await _slates(participant.public_id)
    assert slate.original_ids == ["ab", "c"]
    content = await ContentItem.objects.aget(item_id="ab")
    assert (content.text, content.title) == ("oddtext", "t")


@given(st.lists(st.text(alphabet=st.sampled_from(["a", "\\", "u", "0", "\x00", "é", '"'])), max_size=5))
def test_nul_is_the_only_thing_dropped_from_a_json_parameter(strings: list[str]) -> None:
    assert orjson.loads(slatelog._json_param(strings)) == [s.replace("\x00", "") for s in strings]


def test_a_slate_postgresql_refuses_is_set_aside_and_the_rest_are_drained(settings) -> None:
    import redis

    settings.RANK_FALLBACK_KEY = key = f"test:slate_fallback:{uuid.uuid4().hex}"
    good = _record("p-good", served_at=timezone.now().isoformat())
    bad = _record("p-bad", served_at="not a time")
    client = redis.Redis.from_url(slatelog.redis_url())
    client.rpush(key, bad.to_json(), good.to_json())
    try:
        assert slatelog.drain_fallback() == 1
        assert Slate.objects.filter(participant_id="p-good").exists()
        assert client.llen(key) == client.llen(key + ":processing") == 0
        assert client.lrange(key + ":failed", 0, -1) == [bad.to_json()]
    finally:
        client.delete(key, key + ":processing", key + ":failed")
