"""Table S11 through POST /rank: Reddit titles, Facebook's two passes, the register config, and the paper's NRC."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from participants.models import Participant
from participants.services import issue_enrolment_code
from rankers.models import Slate
from tests.rankers.conftest import item, post_rank, request_with, valid_response

pytestmark = pytest.mark.django_db(transaction=True)


async def _only_slate(public_id: str) -> Slate:
    return await Slate.objects.aget(participant_id=public_id)


async def test_a_title_only_reddit_post_is_scored_on_its_title_and_moved(async_client: AsyncClient, enrol) -> None:
    # A generous budget: the first use of the word-list scorer loads its lexicons.
    participant, token = await enrol("uprank_bridging", ranker_config={"budget_ms": 30_000})
    bridging_title = "Thank you, I appreciate your fair point: we share common ground because the evidence shows it."
    items = [
        item("plain-1", "The bus was late today."),
        item("plain-2", "It rained in the afternoon."),
        item("titled", "", title=bridging_title),
        item("photo", "", title=""),  # neither title nor text: stays where it is
    ]

    response = valid_response(await post_rank(async_client, token, request_with(participant.public_id, items)))

    assert response.ranked_ids[0] == "titled"
    assert response.ranked_ids[3] == "photo"
    slate = await _only_slate(participant.public_id)
    assert slate.fixed_items == {"photo": "no_text"}
    assert slate.intervention_on is True


async def test_nrc_counts_only_movable_items_over_the_table_s11_length(async_client: AsyncClient, enrol) -> None:
    participant, token = await enrol("reverse")
    items = [item("a"), item("ad", is_ad=True), item("b"), item("c")]

    response = valid_response(await post_rank(async_client, token, request_with(participant.public_id, items)))

    assert response.ranked_ids == ["c", "ad", "b", "a"]
    slate = await _only_slate(participant.public_id)
    # a: 0 -> 3, b: 2 -> 2, c: 3 -> 0; the pinned ad is not counted; 4 posts is a slate of 4.
    assert slate.nrc == pytest.approx((3 + 0 + 3) / 3 / 4)
    assert (slate.slate_length, slate.fixed_items) == (4, {"ad": "ad"})


async def test_a_60_item_request_with_50_posts_reversed_has_nrc_one_half(async_client: AsyncClient, enrol) -> None:
    participant, token = await enrol("reverse")
    items = [item(f"p{i}") for i in range(60)]

    response = valid_response(await post_rank(async_client, token, request_with(participant.public_id, items)))

    assert response.ranked_ids == [f"p{i}" for i in reversed(range(50))] + [f"p{i}" for i in range(50, 60)]
    slate = await _only_slate(participant.public_id)
    assert slate.nrc == pytest.approx(0.5)
    assert slate.slate_length == 50
    assert slate.fixed_items == {f"p{i}": "past_slate_size" for i in range(50, 60)}


async def test_facebook_posts_come_in_two_passes_each_ranked_as_its_own_slate(async_client: AsyncClient, enrol) -> None:
    participant, token = await enrol("reverse")
    first = [item(f"a{i}") for i in range(12)]  # an extension that sent 12 in the first pass: 10 are ranked
    second = [item(f"b{i}") for i in range(35)]

    user = participant.public_id
    one = await post_rank(async_client, token, {**request_with(user, first, "facebook"), "slate_pass": 1})
    two = await post_rank(async_client, token, {**request_with(user, second, "facebook"), "slate_pass": 2})

    assert valid_response(one).ranked_ids == [f"a{i}" for i in reversed(range(10))] + ["a10", "a11"]
    assert valid_response(two).ranked_ids == [f"b{i}" for i in reversed(range(35))]
    slates = [s async for s in Slate.objects.filter(participant_id=participant.public_id).order_by("id")]
    assert [(s.slate_pass, s.slate_length, s.n_items) for s in slates] == [(1, 10, 12), (2, 35, 35)]
    assert [s.nrc for s in slates] == [pytest.approx(0.5), pytest.approx(612 / 35 / 35)]


async def test_a_facebook_request_without_a_pass_is_the_first_pass_up_to_ten_posts(
    async_client: AsyncClient, enrol
) -> None:
    participant, token = await enrol("reverse")
    for n in (10, 35):
        items = [item(f"n{n}-{i}") for i in range(n)]
        await post_rank(async_client, token, request_with(participant.public_id, items, "facebook"))

    slates = [s async for s in Slate.objects.filter(participant_id=participant.public_id).order_by("id")]
    assert [(s.slate_pass, s.slate_length) for s in slates] == [(1, 10), (2, 35)]


async def test_a_bad_slate_pass_is_recorded_and_the_feed_still_ranked(async_client: AsyncClient, enrol) -> None:
    participant, token = await enrol("reverse")
    items = [item(f"p{i}") for i in range(5)]
    body = {**request_with(participant.public_id, items, "facebook"), "slate_pass": "second"}

    response = valid_response(await post_rank(async_client, token, body))

    assert response.ranked_ids == [f"p{i}" for i in reversed(range(5))]
    slate = await _only_slate(participant.public_id)
    assert (slate.slate_pass, slate.invalid_items) == (1, {"slate_pass": "bad_slate_pass"})


def _registered_config(participant: Participant) -> tuple[dict, str]:
    from django.test import Client

    code = issue_enrolment_code(participant=participant)
    body = {"enrolment_code": code, "install_key": "config-check"}
    response = Client().post("/api/v1/extension/register", body, content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()["config"]["slate_sizes"], response.json()["token"]


async def test_the_slate_sizes_sent_at_register_are_the_ones_rank_enforces(async_client: AsyncClient, enrol) -> None:
    participant, _ = await enrol("reverse")
    sizes, token = await sync_to_async(_registered_config)(participant)
    assert set(sizes) == {"facebook", "reddit", "twitter"}

    for platform, per_type in sizes.items():
        for content_type, value in per_type.items():
            passes = value if isinstance(value, list) else [value]
            for number, size in enumerate(passes, start=1):
                n = (size or 60) + 3
                kind = content_type.removesuffix("s")
                items = [item(f"{platform}-{kind}-{number}-{i}", type=kind, post_id="elsewhere") for i in range(n)]
                body = {**request_with(participant.public_id, items, platform), "slate_pass": number}
                ranked = valid_response(await post_rank(async_client, token, body)).ranked_ids
                moved = sum(1 for new, old in zip(ranked, items, strict=True) if new != old["id"])
                ranked_count = size or n
                assert moved == ranked_count - ranked_count % 2, (platform, content_type, number)
                assert ranked[ranked_count:] == [i["id"] for i in items[ranked_count:]]
