"""The ranking endpoints as plain async functions: headers and body in, status and JSON out.

Two thin adapters call them: the Django views in ``rankers.views`` (the URLconf,
the test client, any ASGI/WSGI server) and the bare ASGI app in
``rankers.asgi``, which ``prc_site.asgi`` puts in front of Django for these
paths. Django's middleware chain runs each sync-style middleware through a
thread hop in async mode, about a dozen per request, which cut /rank to a
fraction of its throughput; the bare app skips them. The endpoints need none of
it: they authenticate by token or service key, are CSRF-free, and set no cookies.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import orjson
import psycopg
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection

from participants.models import sha256_hex
from prc_site.lib.api_errors import error_body
from prc_site.lib.ratelimit import TokenBucket, shared_bucket
from rankers import prometheus, serving
from rankers.models import RankerServiceKey
from rankers.validation import ParsedRequest, RequestError, decode_body, parse_request

logger = logging.getLogger(__name__)


def token_limiter() -> TokenBucket:
    """One bucket per participant, made only once their token is known: invented tokens cannot evict them."""
    return shared_bucket(settings.RANK_RATE_PER_SECOND, settings.RANK_RATE_BURST)


def unknown_token_limiter() -> TokenBucket:
    """Requests whose token nobody holds, per client address."""
    return shared_bucket(settings.RANK_UNKNOWN_TOKEN_RATE_PER_SECOND, settings.RANK_UNKNOWN_TOKEN_BURST)


@dataclass(frozen=True)
class Incoming:
    method: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    body_too_large: bool = False  # the adapter stopped reading past the limit
    client: str = ""  # the client's address (``prc_site.lib.clients``)


@dataclass(frozen=True)
class Outgoing:
    status: int
    body: bytes


def json_reply(body: object, status: int = 200) -> Outgoing:
    return Outgoing(status, orjson.dumps(body))


def error(code: str, message: str, status: int, field: str | None = None) -> Outgoing:
    return json_reply(error_body(code, message, field), status=status)


def bearer_token(headers: Mapping[str, str], *, extension: bool) -> str:
    header = headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return headers.get("x-extension-token", "").strip() if extension else ""


def read_body(incoming: Incoming) -> ParsedRequest:
    """Size limit, Content-Encoding and lenient parsing; raises RequestError."""
    limit = settings.RANK_MAX_BODY_BYTES
    if incoming.body_too_large or len(incoming.body) > limit:
        raise RequestError("too_large", f"The body is larger than {limit} bytes.", status=413)
    body = decode_body(incoming.body, incoming.headers.get("content-encoding", ""), max_bytes=limit)
    return parse_request(body)


def _observed(endpoint: str, reply: Outgoing, received: float) -> Outgoing:
    prometheus.REQUESTS.labels(endpoint, str(reply.status)).inc()
    prometheus.SERVED_SECONDS.labels(endpoint).observe(serving.HOLD_CLOCK.monotonic() - received)
    return reply


async def rank(incoming: Incoming) -> Outgoing:
    received = serving.HOLD_CLOCK.monotonic()
    return _observed("rank", await _rank(incoming, received), received)


async def _rank(incoming: Incoming, received: float) -> Outgoing:
    """Cheapest refusals first: the token is checked before the body is decompressed or parsed."""
    if incoming.method != "POST":
        return error("method_not_allowed", "Use POST.", 405)
    token = bearer_token(incoming.headers, extension=True)
    if not token:
        return error("unauthenticated", "An extension token is required.", 401)
    unknown = unknown_token_limiter()
    if unknown.is_empty(incoming.client):  # this address keeps sending tokens nobody holds
        return error("rate_limited", "Too many requests with unknown tokens; slow down.", 429)
    token_hash = sha256_hex(token)
    try:
        enrolment = await serving.load_enrolment(token_hash)
    except (psycopg.Error, TimeoutError):  # we cannot tell who this is yet, but we can still show their feed
        logger.exception("participant lookup failed; answering with the untouched feed")
        return await _unverified(incoming, received, token_hash)
    if enrolment is None:
        unknown.allow(incoming.client)
        return error("unauthenticated", "Unknown extension token.", 401)
    if not token_limiter().allow(enrolment.public_id):
        return error("rate_limited", "Too many ranking requests; slow down.", 429)
    try:
        parsed = read_body(incoming)
    except RequestError as exc:
        return error(exc.code, exc.message, exc.status, exc.field)
    if parsed.session.user_id != enrolment.public_id:
        return error("forbidden", "session.user_id does not belong to this token.", 403, "session.user_id")
    return json_reply(await serving.serve_participant(parsed, enrolment, received=received))


async def _unverified(incoming: Incoming, received: float, token_hash: str) -> Outgoing:
    try:
        parsed = read_body(incoming)
    except RequestError as exc:
        return error(exc.code, exc.message, exc.status, exc.field)
    return json_reply(await serving.serve_unverified(parsed, received=received, token_hash=token_hash))


async def ranker_service(incoming: Incoming, name: str) -> Outgoing:
    received = serving.HOLD_CLOCK.monotonic()
    return _observed("ranker_service", await _ranker_service(incoming, name), received)


async def _ranker_service(incoming: Incoming, name: str) -> Outgoing:
    if incoming.method != "POST":
        return error("method_not_allowed", "Use POST.", 405)
    key = bearer_token(incoming.headers, extension=False)
    if not key or not await _service_key_is_active(key):
        return error("unauthenticated", "A valid ranker service key is required.", 401)
    if not serving.ranker_exists(name):
        return error("not_found", f"No ranker named {name!r}.", 404)
    try:
        parsed = read_body(incoming)
    except RequestError as exc:
        return error(exc.code, exc.message, exc.status, exc.field)
    return json_reply(await serving.serve_ranker(parsed, name))


async def _service_key_is_active(key: str) -> bool:
    return await sync_to_async(_key_is_active)(RankerServiceKey.hash_key(key))


def _key_is_active(key_hash: str) -> bool:
    """The bare ASGI app sends none of Django's request signals, so nothing else would close a connection
    that a database restart broke: it is closed here, and the read tried once more on a new one."""
    for attempt in (1, 2):
        close_old_connections()
        try:
            return RankerServiceKey.objects.active().filter(key_hash=key_hash).exists()
        except (OperationalError, InterfaceError):
            connection.close()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")
