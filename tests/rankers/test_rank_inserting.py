"""The inserting arms through POST /rank: candidates loaded before the ranker runs, new items with their URLs,
provenance in the slate log, the shown cache (prefetches excluded), and the fallback when the inventory is
unreadable."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import AsyncClient
from django.utils import timezone

from rankers.content import inventory
from rankers.content.inventory import candidate_row
from rankers.models import CandidatePool, ParticipantQueue, Slate
from rankers.plugins.base import Candidate
from tests.rankers.conftest import item, post_rank, request_with, valid_response

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_pools() -> Iterator[None]:
    inventory.forget_pools()
    yield
    inventory.forget_pools()


def news(number: int, lean: str = "centre", hours_old: float = 1.0) -> Candidate:
    return Candidate(
        id=f"prc-{number}",
        url=f"https://news.example.org/story/{number}",
        source_id=number,
        lean=lean,
        posted_at=timezone.now() - dt.timedelta(hours=hours_old),
        annotation_version="gpt-test/v1",
    )


async def make_pool(*candidates: Candidate, ranker_key: str = "add_news") -> None:
    await CandidatePool.objects.acreate(
        ranker_key=ranker_key,
        platform="reddit",
        newest_post_at=max(c.posted_at for c in candidates if c.posted_at),
        candidates=[candidate_row(c) for c in candidates],
        default_ids=[c.id for c in candidates],
        size=len(candidates),
    )


def feed(user_id: str, n: int = 20, **session: object) -> dict[str, object]:
    return request_with(user_id, [item(f"t3_{i}", f"A post about the day, number {i}.") for i in range(n)], **session)


async def test_add_news_inserts_pool_posts_with_their_urls_and_logs_where_they_came_from(
    async_client: AsyncClient, enrol
) -> None:
    await make_pool(news(1, "left"), news(2, "centre"), news(3, "right"))
    participant, token = await enrol("add_news")

    response = valid_response(await post_rank(async_client, token, feed(participant.public_id)))

    assert response.metadata is not None
    assert response.metadata.intervention_on is True
    assert len(response.new_items) == 3  # 3 of 23 is 13 %: every available post
    assert {str(n.url) for n in response.new_items} == {f"https://news.example.org/story/{i}" for i in (1, 2, 3)}
    slate = await Slate.objects.aget(participant_id=participant.public_id)
    assert sorted(slate.added_ids) == ["prc-1", "prc-2", "prc-3"]
    assert sorted((i["id"], i["source_id"], i["lean"], i["annotation_version"]) for i in slate.inserted) == [
        ("prc-1", 1, "left", "gpt-test/v1"),
        ("prc-2", 2, "centre", "gpt-test/v1"),
        ("prc-3", 3, "right", "gpt-test/v1"),
    ]


async def test_a_participants_queue_decides_which_pool_posts_they_get(async_client: AsyncClient, enrol) -> None:
    await make_pool(*(news(i) for i in range(1, 10)))
    participant, token = await enrol("add_news")
    await ParticipantQueue.objects.acreate(
        participant_id=participant.public_id, ranker_key="add_news", platform="reddit", candidate_ids=["prc-7"]
    )

    response = valid_response(await post_rank(async_client, token, feed(participant.public_id)))

    assert [n.id for n in response.new_items] == ["prc-7"]


async def test_posts_shown_are_not_shown_again_but_prefetched_ones_may_be(async_client: AsyncClient, enrol) -> None:
    await make_pool(news(1))
    participant, token = await enrol("add_news")

    prefetched = valid_response(await post_rank(async_client, token, feed(participant.public_id, prefetch=True)))
    shown = valid_response(await post_rank(async_client, token, feed(participant.public_id)))
    again = valid_response(await post_rank(async_client, token, feed(participant.public_id)))

    assert [n.id for n in prefetched.new_items] == ["prc-1"]
    assert [n.id for n in shown.new_items] == ["prc-1"]  # the prefetch did not count as shown
    assert again.new_items == []
    assert again.metadata is not None
    assert again.metadata.intervention_on is True  # nothing left to add is still the treatment


async def test_stale_pools_insert_nothing_rather_than_stale_posts(async_client: AsyncClient, enrol) -> None:
    await make_pool(news(1, hours_old=24 * 5), news(2, hours_old=24 * 2 + 1))
    await CandidatePool.objects.filter(ranker_key="add_news").aupdate(newest_post_at=timezone.now())
    participant, token = await enrol("add_news")

    response = valid_response(await post_rank(async_client, token, feed(participant.public_id)))

    assert response.new_items == []
    assert response.ranked_ids == [f"t3_{i}" for i in range(20)]


async def test_an_unreadable_inventory_returns_the_original_order(async_client: AsyncClient, enrol, settings) -> None:
    await make_pool(news(1))
    participant, token = await enrol("add_news")
    settings.PRC_CONTENT_LOAD_TIMEOUT_S = 0.0

    response = valid_response(await post_rank(async_client, token, feed(participant.public_id)))

    assert response.ranked_ids == [f"t3_{i}" for i in range(20)]
    assert response.new_items == []
    slate = await Slate.objects.aget(participant_id=participant.public_id)
    assert (slate.fallback_reason, slate.intervention_on) == ("candidates_unavailable", False)


async def renewed_pool(ranker_key: str = "add_news") -> inventory.Pool:
    """The pool a web process holds after its copy expired and the background read behind it finished."""
    await inventory.pool_for(ranker_key, "reddit")
    while inventory._refreshing:
        await asyncio.sleep(0.01)
    return await inventory.pool_for(ranker_key, "reddit")


async def test_a_pool_not_rebuilt_since_it_was_read_is_kept_and_a_rebuilt_one_is_read_again(settings) -> None:
    await make_pool(news(1), news(2))
    first = await inventory.pool_for("add_news", "reddit")
    assert [c.id for c in first.candidates] == ["prc-1", "prc-2"]
    settings.PRC_CONTENT_POOL_CACHE_S = 0.0  # every copy has expired

    assert await renewed_pool() is first  # only its build time was read: nothing decoded again

    await CandidatePool.objects.filter(ranker_key="add_news").aupdate(
        built_at=timezone.now(), candidates=[candidate_row(news(3))], default_ids=["prc-3"], size=1
    )
    rebuilt = await renewed_pool()
    assert [c.id for c in rebuilt.candidates] == ["prc-3"]
    assert [c.id for c in rebuilt.default] == ["prc-3"]


async def test_a_pool_is_decoded_on_a_thread_of_its_own_not_on_the_event_loop(monkeypatch) -> None:
    decoded_on: list[threading.Thread] = []
    decode = inventory.decode_pool

    def watched(row: Any) -> inventory.Pool:
        decoded_on.append(threading.current_thread())
        return decode(row)

    monkeypatch.setattr(inventory, "decode_pool", watched)
    await make_pool(news(1, "left"))

    pool = await inventory.pool_for("add_news", "reddit")

    assert [(c.id, c.lean, c.url) for c in pool.candidates] == [("prc-1", "left", "https://news.example.org/story/1")]
    assert decoded_on
    assert decoded_on[0] is not threading.current_thread()
