"""``POST /api/v1/extension/events`` on the event loop, mounted in front of Django by ``prc_site.asgi``.

Why not the DRF view (``participants.api.EventsView``, which the test client, any other server and the OpenAPI
schema use): under ASGI a sync view holds a thread and a database connection for every request that waits,
so an overloaded web tier opened connections until PostgreSQL refused them ("too many clients", HTTP 500).
Here a batch waits as a coroutine and the work is bounded, so overload is answered, never a crash:

1. At most ``EVENTS_MAX_IN_FLIGHT`` batches are in hand per web process; one more is answered at once with
   503 ``busy`` and ``Retry-After: EVENTS_RETRY_AFTER_S``, before its body is read.
2. The batches in hand share ``EVENTS_DB_POOL_SIZE`` connections per process (their own pool, apart from
   ``/rank``'s); the token lookup and the insert together must finish within ``EVENTS_DB_TIMEOUT_S``
   (waiting for a connection included), or the answer is the same 503. A database that refuses connections
   or fails is a 503 too.

Everything else is the view's: the token (an uninstalled install's refused), the envelope
(``behaviour.check_batch``), the per-event checks and the insert (``events.prepare_batch``, ``INGEST_SQL``),
the answers and errors. A 503 may come after the insert committed (it ran past the deadline): the batch's
key makes the retry a repeat, answered with what was stored.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass

import orjson
import psycopg
from django.conf import settings
from django.utils import timezone

from participants import events
from participants.behaviour import Batch, BatchError, check_batch
from participants.models import sha256_hex
from participants.tokens import EXTENSION_CHALLENGE, extension_token
from prc_site.lib.api_errors import error_body
from prc_site.lib.asyncdb import LoopPool, per_loop, within
from prc_site.lib.bare_asgi import Receive, Scope, Send, header_map, read_body

logger = logging.getLogger(__name__)

PATH = "/api/v1/extension/events"


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    retry_after: int | None = None


def _reply(body: object, status: int = 200) -> Reply:
    return Reply(status, orjson.dumps(body))


def _error(code: str, message: str, status: int, field: str | None = None) -> Reply:
    return _reply(error_body(code, message, field), status)


def busy() -> Reply:
    seconds = settings.EVENTS_RETRY_AFTER_S
    body = error_body("busy", f"Too many event batches at once; send this one again in {seconds} s.")
    return Reply(503, orjson.dumps(body), retry_after=seconds)


class Gate:
    """Counts the batches in hand on one event loop; refuses one past ``limit`` instead of queueing it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.inside = 0

    def enter(self) -> bool:
        if self.inside >= self.limit:
            return False
        self.inside += 1
        return True

    def leave(self) -> None:
        self.inside -= 1


_gates: dict[asyncio.AbstractEventLoop, Gate] = {}
_pools: dict[asyncio.AbstractEventLoop, LoopPool] = {}


def gate() -> Gate:
    """This event loop's gate."""
    return per_loop(_gates, lambda: Gate(settings.EVENTS_MAX_IN_FLIGHT))


def pool() -> LoopPool:
    """This event loop's connections for event batches (not ``/rank``'s: a flood of batches cannot starve it)."""
    return per_loop(_pools, lambda: LoopPool(settings.EVENTS_DB_POOL_SIZE))


def handles(scope: Scope) -> bool:
    """POST on the exact path; any other method goes to Django (which answers 405 in the one format)."""
    return scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "POST"


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    reply = await receive_batch(scope, receive)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(reply.body)).encode())]
    if reply.status == 401:
        headers.append((b"www-authenticate", EXTENSION_CHALLENGE.encode()))
    if reply.retry_after is not None:
        headers.append((b"retry-after", str(reply.retry_after).encode()))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})


async def receive_batch(scope: Scope, receive: Receive) -> Reply:
    headers = header_map(scope)
    token = extension_token(headers)
    if not token:
        return _error("not_authenticated", "Authentication credentials were not provided.", 401)
    door = gate()
    if not door.enter():
        return busy()
    try:
        raw = await read_body(receive, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        if raw is None:
            return _error("too_large", "The batch is larger than the server accepts.", 413)
        try:
            work = _store(sha256_hex(token), raw, timezone.now())
            return await within(work, settings.EVENTS_DB_TIMEOUT_S)
        except TimeoutError:
            logger.info("event batch not stored within EVENTS_DB_TIMEOUT_S: answered busy")  # no traceback per batch
            return busy()
        except psycopg.Error:
            logger.warning("event batch refused as busy: the database failed", exc_info=True)
            return busy()
    finally:
        door.leave()


def _parse(raw: bytes) -> Batch | BatchError:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return BatchError("parse_error", "The body is not JSON.", None)
    return check_batch(body)


async def _store(token_hash: str, raw: bytes, now: dt.datetime) -> Reply:
    """The view's order: the token first, then the envelope, then the events."""
    async with pool().connection() as conn:
        sender = await events.asender_for_token_hash(conn, token_hash)
        if sender is None:
            return _error("invalid_token", "Unknown or revoked extension token.", 401)
        batch = _parse(raw)
        if isinstance(batch, BatchError):
            return _error(batch.code, batch.message, 400, batch.field)
        try:
            result = await events.aingest_events(conn, sender=sender, batch=batch, now=now)
        except events.Withdrawn:
            return _error(*events.WITHDRAWN, 403)
    return _reply(result.as_dict())


async def shutdown() -> None:
    """Close this event loop's connections (the ASGI lifespan's shutdown)."""
    event_pool = _pools.pop(asyncio.get_running_loop(), None)
    if event_pool is not None:
        await event_pool.close()
