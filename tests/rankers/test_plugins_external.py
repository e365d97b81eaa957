"""The external ranker against a fake PRC ranker on loopback."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from ranking_challenge.fake import fake_request
from ranking_challenge.request import RankingRequest

from rankers.plugins import get_ranker
from rankers.plugins.base import RankContext, SlateItem
from rankers.plugins.external import (
    ExternalRanker,
    ExternalRankerError,
    ExternalRankerTimeout,
    build_request,
    close_shared_client,
)
from tests.fake_http import serving

RECEIVED: list[RankingRequest] = []
# /slow answers only once this is set (at the end of each test), so a client that returns while it is still
# clear has given up by itself: no test depends on how fast this machine is.
RELEASE_SLOW = threading.Event()


def fake_ranker(path: str, body: bytes) -> tuple[int, bytes]:
    """Reverses the slate and adds one item on /rank; other paths misbehave as named."""
    if path == "/slow":
        RELEASE_SLOW.wait(timeout=10)  # shorter than any timeout "not under test"
    if path == "/error":
        return 500, b'{"detail": "boom"}'
    if path == "/garbage":
        return 200, b"<html>oops</html>"
    if path == "/wrong-shape":
        return 200, b'{"ranked": []}'
    request = RankingRequest.model_validate_json(body)
    RECEIVED.append(request)
    ids = [item.id for item in request.items][::-1]
    answer = {"ranked_ids": ids, "new_items": [{"id": "new-1", "url": "https://example.org/p/1"}]}
    return 200, json.dumps(answer).encode()


@pytest.fixture(scope="module")
def ranker_url() -> Iterator[str]:
    with serving(fake_ranker) as url:
        yield url


@pytest.fixture(autouse=True)
async def shared_client_closed() -> AsyncIterator[None]:
    RECEIVED.clear()
    RELEASE_SLOW.clear()
    yield
    RELEASE_SLOW.set()
    await close_shared_client()


ITEMS = [
    SlateItem("a", "first post", engagements={"comment": 3, "award": 0, "score": -2}, embedded_urls=["not a url"]),
    SlateItem("b", "a reply", type="comment", post_id="a", parent_id="a", created_at=dt.datetime(2024, 9, 1)),
    SlateItem("c", "", title="an image post", embedded_urls=["https://i.redd.it/x.png"]),
]


WIDE_TIMEOUT_S = 30.0  # for calls whose timeout is not under test: a busy machine must not turn them into one


def ctx(url: str, **config: object) -> RankContext:
    """A context for the ranker at ``url``; ``timeout_s=None`` leaves the timeout to the setting."""
    config = {"timeout_s": WIDE_TIMEOUT_S, **config}
    if config["timeout_s"] is None:
        del config["timeout_s"]
    return RankContext(
        platform="reddit",
        content_type="post",
        user_id="p-123",
        now=dt.datetime(2024, 10, 1, 12, tzinfo=dt.UTC),
        config={"url": url, **config},
    )


def external() -> ExternalRanker:
    ranker = get_ranker("external")
    assert isinstance(ranker, ExternalRanker)
    return ranker


async def test_external_ranker_returns_the_services_order_and_new_items(ranker_url: str) -> None:
    result = await external().arank(ITEMS, ctx(f"{ranker_url}/rank", session_id="s-1", user_name_hash="h"))

    assert result.ranked_ids == ["c", "b", "a"]
    assert [(n.id, n.url) for n in result.new_items] == [("new-1", "https://example.org/p/1")]
    sent = RECEIVED[0]
    assert (sent.session.session_id, sent.session.user_id, sent.session.platform) == ("s-1", "p-123", "reddit")
    assert [item.original_rank for item in sent.items] == [0, 1, 2]
    assert sent.items[0].embedded_urls == []  # the invalid URL is left out, the item is kept
    assert sent.items[0].engagements.score == -2  # type: ignore[union-attr]
    assert sent.items[1].type == "comment"


async def test_external_ranker_reuses_one_keep_alive_client(ranker_url: str) -> None:
    from rankers.plugins.external import shared_client

    first = shared_client()
    await external().arank(ITEMS, ctx(f"{ranker_url}/rank"))
    await external().arank(ITEMS, ctx(f"{ranker_url}/rank"))

    assert shared_client() is first
    assert len(RECEIVED) == 2


@pytest.mark.parametrize(
    ("path", "reason"),
    [("/error", "http_status"), ("/garbage", "invalid_response"), ("/wrong-shape", "invalid_response")],
)
async def test_external_ranker_raises_on_a_bad_answer(ranker_url: str, path: str, reason: str) -> None:
    with pytest.raises(ExternalRankerError) as raised:
        await external().arank(ITEMS, ctx(f"{ranker_url}{path}"))

    assert raised.value.reason == reason


async def test_external_ranker_gives_up_at_its_hard_timeout(ranker_url: str) -> None:
    with pytest.raises(ExternalRankerTimeout):
        await external().arank(ITEMS, ctx(f"{ranker_url}/slow", timeout_s=0.2))

    assert not RELEASE_SLOW.is_set()  # it gave up; the service had not answered


async def test_external_ranker_uses_the_settings_timeout_by_default(ranker_url: str, settings: object) -> None:
    # Longer than the built-in default (0.4 s): giving up sooner would mean the setting was ignored. A lower
    # bound only, which a busy machine cannot break.
    settings.PRC_EXTERNAL_RANKER_TIMEOUT_S = 1.0  # type: ignore[attr-defined]
    started = time.monotonic()
    with pytest.raises(ExternalRankerTimeout):
        await external().arank(ITEMS, ctx(f"{ranker_url}/slow", timeout_s=None))

    assert time.monotonic() - started >= 0.95
    assert not RELEASE_SLOW.is_set()


async def test_external_ranker_raises_when_nothing_listens() -> None:
    with pytest.raises(ExternalRankerError) as raised:
        await external().arank(ITEMS, ctx("http://127.0.0.1:9/rank", timeout_s=0.5))

    assert raised.value.reason in {"transport", "timeout"}


async def test_external_ranker_without_a_url_is_not_configured() -> None:
    with pytest.raises(ExternalRankerError, match="not_configured"):
        await external().arank(ITEMS, ctx(""))


def test_external_ranker_is_async_only() -> None:
    with pytest.raises(NotImplementedError):
        external().rank(ITEMS, ctx("http://127.0.0.1:9/rank"))


@pytest.mark.parametrize("platform", ["twitter", "reddit", "facebook"])
def test_requests_built_from_the_prc_fake_slates_validate(platform: str) -> None:
    request = fake_request(n_posts=5, n_comments=2, platform=platform)
    items = [
        SlateItem(
            id=i.id,
            text=i.text,
            type=i.type,
            post_id=i.post_id,
            parent_id=i.parent_id,
            author_name_hash=i.author_name_hash,
            created_at=i.created_at,
            engagements={k: v for k, v in i.engagements.model_dump().items() if v is not None},
            embedded_urls=[str(u) for u in i.embedded_urls or ()],
        )
        for i in request.items
    ]
    context = RankContext(platform=platform, content_type="post", user_id="p", now=dt.datetime.now(dt.UTC))

    built = build_request(items, context)

    assert [item.id for item in built.items] == [item.id for item in request.items]
    RankingRequest.model_validate_json(built.model_dump_json())


def test_an_unknown_platform_cannot_be_sent() -> None:
    context = RankContext(platform="myspace", content_type="post", user_id="p", now=dt.datetime.now(dt.UTC))

    with pytest.raises(ExternalRankerError, match="unsupported_platform"):
        build_request(ITEMS, context)
