"""``GET /api/v1/extension/in-feed/next`` on the event loop, mounted in front of Django by ``prc_site.asgi``.

The extension asks on every page load, so nearly every request finds the participant's prompt already
shown today, or nothing due: a read. This app answers those with one query on the loop's pooled psycopg
connection (``prc_site.lib.asyncdb``), without Django's middleware or a thread per request. Only a request
that changes something (the first showing of a day, or a new prompt: at most once a day per participant)
goes to ``surveys.services.next_in_feed_prompt`` on Django's one sync thread.

The contract is the DRF view's (``surveys.in_feed_api.NextInFeedQuestionView``, which the test client,
any other server and the OpenAPI schema use): the same token check (the SHA-256 of the token, an
uninstalled install's token refused), the same decision (``in_feed_schedule.offer``), the same body
(``in_feed_api.next_body``) and the same errors.

1. Token: missing, unknown or uninstalled -> 401, as the view's authentication says.
2. ``platform``: missing or not one of ``PLATFORMS`` -> 400 with field ``platform``.
3. One query reads the participant, whether their consent is in force, the study's timezone and their
   latest prompt with its question.
4. ``offer`` decides: nothing, the latest prompt again (answered here when already shown today),
   or a change (handed to the service).
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

import orjson
import psycopg
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections, connection
from django.utils import timezone
from psycopg.rows import dict_row

from participants.models import Participant, sha256_hex
from participants.paper import PLATFORMS
from participants.tokens import EXTENSION_CHALLENGE, extension_token
from prc_site.lib.api_errors import error_body
from prc_site.lib.asyncdb import loop_pool, within
from prc_site.lib.bare_asgi import Receive, Scope, Send, header_map
from surveys import in_feed_schedule, services
from surveys.in_feed_api import ShownPrompt, next_body

logger = logging.getLogger(__name__)

PATH = "/api/v1/extension/in-feed/next"

# Everything the decision needs, for one token hash (unknown and uninstalled tokens: no row). The consent
# in force is the study's newest document effective at %(at)s, as ``Participant.has_current_consent``.
STATE_SQL = """
SELECT p.id, p.public_id, p.enrolled_at, s.timezone,
       p.withdrawn_at IS NULL AND EXISTS (
           SELECT 1 FROM participants_consentrecord cr
           WHERE cr.participant_id = p.id AND cr.document_id = (
               SELECT d.id FROM participants_consentdocument d
               WHERE d.study_id = p.study_id AND d.effective_at <= %(at)s
               ORDER BY d.effective_at DESC, d.id DESC LIMIT 1)
       ) AS consent_ok,
       lp.id AS prompt_id, lp.sequence, lp.platform, lp.first_shown_on, lp.last_shown_on, lp.text,
       lp.answered_at IS NOT NULL OR lp.dismissed_at IS NOT NULL AS closed,
       q.key AS question_key, q.options
FROM participants_extensioninstall i
JOIN participants_participant p ON p.id = i.participant_id
JOIN participants_study s ON s.id = p.study_id
LEFT JOIN LATERAL (
    SELECT * FROM surveys_infeedprompt ip WHERE ip.participant_id = p.id ORDER BY ip.sequence DESC LIMIT 1
) lp ON TRUE
LEFT JOIN surveys_infeedquestion q ON q.id = lp.question_id
WHERE i.token_hash = %(token_hash)s AND i.uninstalled_at IS NULL
"""


def handles(scope: Scope) -> bool:
    """GET on the exact path; any other method goes to Django (which answers 405 in the one format)."""
    return scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "GET"


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    headers = header_map(scope)
    status, body = await next_question(headers, scope.get("query_string", b"").decode("latin-1"))
    response_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        response_headers.append((b"www-authenticate", EXTENSION_CHALLENGE.encode()))
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": body})


def _reply(body: object, status: int = 200) -> tuple[int, bytes]:
    return status, orjson.dumps(body)


def _error(code: str, message: str, status: int, field: str | None = None) -> tuple[int, bytes]:
    return _reply(error_body(code, message, field), status)


def platform_error(query_string: str) -> tuple[int, bytes] | None:
    """The view's input serializer's answer to a missing or unknown platform; None when it is fine."""
    values = parse_qs(query_string, keep_blank_values=True).get("platform")
    if not values:
        return _error("required", "This field is required.", 400, "platform")
    if values[-1] not in PLATFORMS:  # a repeated parameter: Django's QueryDict reads the last one
        return _error("invalid_choice", f'"{values[-1]}" is not a valid choice.', 400, "platform")
    return None


async def next_question(headers: Mapping[str, str], query_string: str) -> tuple[int, bytes]:
    token = extension_token(headers)
    if not token:
        return _error("not_authenticated", "Authentication credentials were not provided.", 401)
    at = timezone.now()
    try:
        row = await within(_read_state(sha256_hex(token), at), settings.RANK_DB_LOOKUP_TIMEOUT_S)
    except (psycopg.Error, TimeoutError):
        logger.exception("in-feed lookup failed")
        return _error("unavailable", "The question service is unavailable; ask again later.", 503)
    if row is None:
        return _error("invalid_token", "Unknown or revoked extension token.", 401)
    refused = platform_error(query_string)
    if refused is not None:
        return refused
    platform = parse_qs(query_string, keep_blank_values=True)["platform"][-1]
    try:
        return _reply(await _decide(row, platform, at))
    except DatabaseError:
        logger.exception("in-feed write failed")
        return _error("unavailable", "The question service is unavailable; ask again later.", 503)


async def _read_state(token_hash: str, at: dt.datetime) -> dict[str, Any] | None:
    """A broken pooled connection is dropped and the read retried once."""
    for attempt in (1, 2):
        try:
            async with (
                loop_pool(settings.RANK_DB_POOL_SIZE).connection() as conn,
                conn.cursor(row_factory=dict_row) as cursor,
            ):
                await cursor.execute(STATE_SQL, {"token_hash": token_hash, "at": at})
                return await cursor.fetchone()
        except (psycopg.OperationalError, psycopg.InterfaceError):
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def _decide(row: Mapping[str, Any], platform: str, at: dt.datetime) -> dict[str, Any]:
    if row["enrolled_at"] is None or not row["consent_ok"]:
        return next_body(None)
    tz = zoneinfo.ZoneInfo(row["timezone"])
    today = at.astimezone(tz).date()
    last = (
        None
        if row["prompt_id"] is None
        else in_feed_schedule.LastPrompt(row["sequence"], row["first_shown_on"], row["platform"], row["closed"])
    )
    decision = in_feed_schedule.offer(
        installed_on=row["enrolled_at"].astimezone(tz).date(), last=last, today=today, platform=platform
    )
    if decision is None:
        return next_body(None)
    if decision.action == "continue" and row["last_shown_on"] == today:  # already counted today: nothing to write
        return next_body(
            ShownPrompt(
                row["prompt_id"], row["question_key"], row["text"], row["options"], row["first_shown_on"], today
            )
        )
    return await sync_to_async(_next_through_service)(row["id"], platform, at)


def _next_through_service(participant_id: int, platform: str, at: dt.datetime) -> dict[str, Any]:
    """The write, on Django's sync thread. Nothing sends this thread Django's request signals, so a connection
    that a database restart broke is closed here and the call tried once more on a new one."""
    for attempt in (1, 2):
        close_old_connections()
        try:
            participant = Participant.objects.select_related("study").get(pk=participant_id)
            prompt = services.next_in_feed_prompt(participant=participant, platform=platform, at=at)
            return next_body(None if prompt is None else ShownPrompt.of(prompt))
        except (OperationalError, InterfaceError):
            connection.close()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")
