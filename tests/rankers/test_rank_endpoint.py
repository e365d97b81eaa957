"""POST /rank through HTTP: the PRC package's own requests, content types, and every bad input."""

from __future__ import annotations

import gzip

import orjson
import pytest
from django.test import AsyncClient

from prc_site.lib.ratelimit import TokenBucket
from rankers import endpoints
from tests.rankers.conftest import item, post_rank, prc_request, request_with, valid_response

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("platform", ["reddit", "twitter", "facebook"])
async def test_prc_fake_requests_get_valid_prc_responses(async_client: AsyncClient, enrol, platform: str) -> None:
    participant, token = await enrol("control")
    body = prc_request(participant.public_id, n_posts=20, n_comments=2, platform=platform)

    response = valid_response(await post_rank(async_client, token, body))

    assert response.ranked_ids == [i["id"] for i in body["items"]]
    assert response.metadata is not None
    assert response.metadata.intervention_on is False


async def test_text_plain_body_and_extension_token_header_are_accepted(async_client: AsyncClient, enrol) -> None:
    participant, token = await enrol("control")
    body = prc_request(participant.public_id, n_posts=3)

    response = await async_client.post(
        "/rank", data=orjson.dumps(body), content_type="text/plain", headers={"X-Extension-Token": token}
    )

    assert valid_response(response).ranked_ids == [i["id"] for i in body["items"]]


async def test_gzip_body_is_accepted(async_client: AsyncClient, enrol) -> None:
    participant, token = await enrol("control")
    body = prc_request(participant.public_id, n_posts=5)

    response = await post_rank(async_client, token, gzip.compress(orjson.dumps(body)), Content_Encoding="gzip")

    assert valid_response(response).ranked_ids == [i["id"] for i in body["items"]]


async def test_trailing_slash_is_not_redirected(async_client: AsyncClient) -> None:
    response = await async_client.post("/rank/", data=b"{}", content_type="application/json")
    assert response.status_code == 404


async def test_malformed_json_is_a_400_json_error(async_client: AsyncClient, enrol) -> None:
    _participant, token = await enrol("control")

    response = await post_rank(async_client, token, b'{"session": {"user_id": ')

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


async def test_missing_session_field_is_a_400_naming_the_field(async_client: AsyncClient, enrol) -> None:
    participant, token = await enrol("control")
    body = request_with(participant.public_id, [item("a")])
    del body["session"]["platform"]

    response = await post_rank(async_client, token, body)

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "session.platform"


async def test_body_over_the_limit_is_a_413(async_client: AsyncClient, enrol, settings) -> None:
    settings.RANK_MAX_BODY_BYTES = 10_000
    participant, token = await enrol("control")
    body = request_with(participant.public_id, [item(str(i), "x" * 500) for i in range(40)])

    response = await post_rank(async_client, token, body)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


async def test_gzip_bomb_over_the_limit_is_a_413(async_client: AsyncClient, enrol, settings) -> None:
    settings.RANK_MAX_BODY_BYTES = 10_000
    _participant, token = await enrol("control")

    response = await post_rank(async_client, token, gzip.compress(b" " * 1_000_000), Content_Encoding="gzip")

    assert response.status_code == 413


async def test_unknown_token_is_a_401(async_client: AsyncClient, enrol) -> None:
    participant, _token = await enrol("control")

    response = await post_rank(async_client, "not-a-token", prc_request(participant.public_id))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


async def test_missing_token_is_a_401(async_client: AsyncClient) -> None:
    response = await async_client.post("/rank", data=b"{}", content_type="application/json")
    assert response.status_code == 401


async def test_token_of_another_participant_is_a_403(async_client: AsyncClient, enrol) -> None:
    participant, _token = await enrol("control")
    _other, other_token = await enrol("control")

    response = await post_rank(async_client, other_token, prc_request(participant.public_id))

    assert response.status_code == 403
    assert response.json()["error"]["field"] == "session.user_id"


async def test_flood_from_one_token_is_rate_limited_without_affecting_others(
    async_client: AsyncClient, enrol, settings
) -> None:
    settings.RANK_RATE_PER_SECOND, settings.RANK_RATE_BURST = 0.001, 3
    flooder, flood_token = await enrol("control")
    other, other_token = await enrol("control")

    statuses = [
        (await post_rank(async_client, flood_token, prc_request(flooder.public_id))).status_code for _ in range(5)
    ]
    other_status = (await post_rank(async_client, other_token, prc_request(other.public_id))).status_code

    assert statuses == [200, 200, 200, 429, 429]
    assert other_status == 200


async def test_bad_items_stay_in_place_unranked_and_quirks_are_accepted(async_client: AsyncClient, enrol) -> None:
    participant, token = await enrol("reverse")
    items = [
        item("ok-1"),
        item("long-url", embedded_urls=["https://example.com/" + "a" * 2100]),
        item("ok-2", created_at="1970-01-01T00:00:00", parent_id=""),
        item("negative", engagements={"like": -1, "retweet": 0, "comment": 0, "share": 0}),
        item("no-text-field", text=None),
        item("ftp", embedded_urls=["ftp://example.com/file"]),
        item("ok-3", engagements={"upvote": 1, "downvote": 0, "comment": 0, "award": 0}, surprise="ignored"),
    ]

    response = valid_response(await post_rank(async_client, token, request_with(participant.public_id, items)))

    assert response.ranked_ids == ["ok-3", "long-url", "ok-2", "negative", "no-text-field", "ftp", "ok-1"]


async def test_a_flood_of_invented_tokens_is_refused_per_address_before_the_body_is_read(
    async_client: AsyncClient, settings
) -> None:
    settings.RANK_UNKNOWN_TOKEN_RATE_PER_SECOND, settings.RANK_UNKNOWN_TOKEN_BURST = 0.001, 5
    settings.PRC_CLIENT_IP_HEADER = "X-Real-IP"
    not_gzip = b"this is not gzip data" * 100

    statuses = [
        (
            await post_rank(
                async_client, f"invented-{i}", not_gzip, **{"Content-Encoding": "gzip", "X-Real-IP": "203.0.113.7"}
            )
        ).status_code
        for i in range(8)
    ]
    elsewhere = await post_rank(async_client, "invented-x", not_gzip, **{"X-Real-IP": "198.51.100.1"})

    # An unknown token is a 401 before the body is decompressed (else: 400 bad_encoding), then a 429.
    assert statuses == [401] * 5 + [429] * 3
    assert elsewhere.status_code == 401


async def test_invented_tokens_cannot_evict_a_participants_rate_limit_bucket(
    async_client: AsyncClient, enrol, settings
) -> None:
    settings.RANK_RATE_PER_SECOND, settings.RANK_RATE_BURST = 0.001, 2
    settings.PRC_CLIENT_IP_HEADER = "X-Real-IP"
    participant, token = await enrol("control")
    spent = [(await post_rank(async_client, token, prc_request(participant.public_id))).status_code for _ in range(3)]
    buckets = len(endpoints.token_limiter())

    for i in range(300):
        await post_rank(async_client, f"invented-{i}", b"{}", **{"X-Real-IP": f"10.0.{i // 250}.{i % 250}"})

    assert spent == [200, 200, 429]
    assert len(endpoints.token_limiter()) == buckets
    assert (await post_rank(async_client, token, prc_request(participant.public_id))).status_code == 429


def test_a_token_bucket_refills_at_its_rate_on_an_injected_clock() -> None:
    now = [100.0]
    bucket = TokenBucket(rate=2.0, burst=3.0, clock=lambda: now[0])

    assert [bucket.allow("k") for _ in range(4)] == [True, True, True, False]
    assert bucket.is_empty("k")
    now[0] += 0.5  # one token back
    assert [bucket.allow("k") for _ in range(2)] == [True, False]
    now[0] += 60  # refills up to the burst, not beyond
    assert [bucket.allow("k") for _ in range(4)] == [True, True, True, False]
    assert bucket.allow("other")  # every key has its own bucket


def test_a_token_bucket_forgets_its_least_recently_used_key_past_its_size() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=1.0, burst=1.0, max_keys=2, clock=lambda: now[0])
    assert bucket.allow("a")
    assert bucket.allow("b")
    assert not bucket.allow("a")  # a is now the most recently used
    assert bucket.allow("c")  # b is forgotten
    assert len(bucket) == 2
    assert bucket.is_empty("a")
    assert not bucket.is_empty("b")
