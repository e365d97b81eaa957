"""The ``external`` ranker: any HTTP service speaking the PRC schema (``RankingRequest`` -> ``RankingResponse``).

Configured per arm through ``ranker_config`` (``context.config``):

- ``url`` (required): the service's rank endpoint, e.g. ``http://ranker:8000/rank``;
- ``timeout_s``: hard limit for the whole call (default ``settings.PRC_EXTERNAL_RANKER_TIMEOUT_S``);
- ``send_survey`` (default false): also send the participant's baseline answers as the request's ``survey``
  (a PRC ``SurveyResponse``, from ``context.survey``). Off unless the arm's researchers allow it;
- ``session_id``, ``user_name_hash``, ``page_url``, ``cohort``: the request's session fields when the caller knows
  them. Otherwise ``session_id`` is a fresh uuid4 per call, ``user_name_hash`` is empty, ``page_url`` is the
  platform's home page and ``cohort`` is left out. ``user_id`` (pseudonymous), ``platform``, ``current_time`` and
  ``prefetch`` come from the context.

Items carry their platform's engagement fields (missing counts are 0); embedded URLs that are not valid http(s)
URLs are left out; an item without ``created_at`` gets the context's time. The request is validated against
``ranking_challenge.request.RankingRequest`` before it is sent.

``arank`` raises ``ExternalRankerError`` (``ExternalRankerTimeout`` for timeouts) on a non-2xx answer, a body that
is not a valid ``RankingResponse``, a transport error or the hard timeout; the caller then falls back to the
original order. It does not check the returned ids: the caller's output checks do that for every ranker.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import httpx2
import pydantic
from ranking_challenge.request import RankingRequest
from ranking_challenge.response import RankingResponse

from rankers.plugins.base import NewItem, RankContext, RankResult, SlateItem, register

DEFAULT_TIMEOUT_S = 0.4

ENGAGEMENT_FIELDS: Mapping[str, tuple[str, ...]] = {
    "twitter": ("retweet", "like", "comment", "share"),
    "reddit": ("comment", "award"),
    "facebook": ("like", "love", "care", "haha", "wow", "sad", "angry", "comment", "share"),
}
PLATFORM_ALIASES = {"x": "twitter", "twitter": "twitter", "reddit": "reddit", "facebook": "facebook"}
HOME_PAGES = {"twitter": "https://x.com/", "reddit": "https://www.reddit.com/", "facebook": "https://www.facebook.com/"}


class ExternalRankerError(RuntimeError):
    """The external service gave no usable ranking; ``reason`` is short and safe to log."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class ExternalRankerTimeout(ExternalRankerError, TimeoutError):
    pass


def _engagements(platform: str, counts: Mapping[str, int]) -> dict[str, int]:
    engagements = {name: max(0, int(counts.get(name, 0) or 0)) for name in ENGAGEMENT_FIELDS[platform]}
    if platform == "reddit" and counts.get("score") is not None:
        engagements["score"] = int(counts["score"])
    return engagements


def _urls(urls: Sequence[str]) -> list[str]:
    adapter = pydantic.TypeAdapter(pydantic.HttpUrl)
    valid = []
    for url in urls:
        try:
            adapter.validate_python(url)
        except pydantic.ValidationError:
            continue
        valid.append(url)
    return valid


def build_request(items: Sequence[SlateItem], context: RankContext) -> RankingRequest:
    """The PRC request for this slate (see the module docstring for where each field comes from)."""
    platform = PLATFORM_ALIASES.get(context.platform.lower())
    if platform is None:
        raise ExternalRankerError("unsupported_platform", context.platform)
    config = context.config
    session: dict[str, Any] = {
        "session_id": str(config.get("session_id") or uuid.uuid4()),
        "user_id": context.user_id,
        "user_name_hash": str(config.get("user_name_hash") or ""),
        "platform": platform,
        "url": str(config.get("page_url") or HOME_PAGES[platform]),
        "current_time": context.now,
        "prefetch": context.prefetch,
    }
    if config.get("cohort"):
        session["cohort"] = str(config["cohort"])
    body: dict[str, Any] = {
        "session": session,
        "items": [_item(item, rank, platform, context.now) for rank, item in enumerate(items)],
    }
    if config.get("send_survey") is True and context.survey:
        body["survey"] = dict(context.survey)
    return RankingRequest.model_validate(body)


def _item(item: SlateItem, rank: int, platform: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "id": item.id,
        "original_rank": rank,
        "post_id": item.post_id,
        "parent_id": item.parent_id,
        "title": item.title,
        "text": item.text,
        "author_name_hash": item.author_name_hash,
        "type": item.type if item.type in ("post", "comment") else "post",
        "embedded_urls": _urls(item.embedded_urls),
        "created_at": item.created_at or now,
        "engagements": _engagements(platform, item.engagements),
        "language": item.language,
    }


def parse_response(body: bytes) -> RankResult:
    try:
        response = RankingResponse.model_validate_json(body)
    except pydantic.ValidationError as exc:
        raise ExternalRankerError("invalid_response", f"{exc.error_count()} validation errors") from None
    new_items = [NewItem(id=str(item.id), url=str(item.url)) for item in response.new_items or ()]
    return RankResult(ranked_ids=list(response.ranked_ids), new_items=new_items)


# One keep-alive client per event loop: an async client's connections belong to the loop that opened them.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx2.AsyncClient] = weakref.WeakKeyDictionary()


def shared_client() -> httpx2.AsyncClient:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = httpx2.AsyncClient(
            limits=httpx2.Limits(max_connections=200, max_keepalive_connections=50, keepalive_expiry=60),
            headers={"Content-Type": "application/json"},
        )
        _clients[loop] = client
    return client


async def close_shared_client() -> None:
    """Close this loop's client (at shutdown, or between tests)."""
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


def _timeout_s(config: Mapping[str, Any]) -> float:
    if "timeout_s" in config:
        return float(config["timeout_s"])
    from django.conf import settings

    return float(getattr(settings, "PRC_EXTERNAL_RANKER_TIMEOUT_S", DEFAULT_TIMEOUT_S))


@register("external")
class ExternalRanker:
    """Delegates the ranking to an HTTP service speaking the PRC schema; async only."""

    name: ClassVar[str]
    attributes: ClassVar[tuple[str, ...]] = ()

    def rank(self, items: Sequence[SlateItem], context: RankContext) -> RankResult:
        raise NotImplementedError("the external ranker is async: await arank(items, context)")

    async def arank(self, items: Sequence[SlateItem], context: RankContext) -> RankResult:
        url = context.config.get("url")
        if not url:
            raise ExternalRankerError("not_configured", "ranker_config has no url")
        body = build_request(items, context).model_dump_json(exclude_none=True)
        timeout_s = _timeout_s(context.config)
        try:
            async with asyncio.timeout(timeout_s):
                response = await shared_client().post(str(url), content=body, timeout=timeout_s)
                content = await response.aread()
        except (TimeoutError, httpx2.TimeoutException):
            raise ExternalRankerTimeout("timeout", f"no answer within {timeout_s:g} s") from None
        except httpx2.HTTPError as exc:
            raise ExternalRankerError("transport", type(exc).__name__) from None
        if not 200 <= response.status_code < 300:
            raise ExternalRankerError("http_status", str(response.status_code))
        return parse_response(content)
