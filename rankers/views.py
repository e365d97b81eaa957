"""HTTP endpoints of the ranking path: ``POST /rank`` and ``POST /rankers/<name>/rank``.

Both are async views: under uvicorn a held request is a sleeping coroutine,
not a blocked thread, so thousands of held requests fit in one process.
"""

from __future__ import annotations

import hashlib
import logging
import time

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from prc_site.lib.api_errors import error_body
from rankers import prometheus, serving
from rankers.models import RankerServiceKey
from rankers.ratelimit import TokenBucket
from rankers.validation import ParsedRequest, RequestError, decode_body, parse_request

logger = logging.getLogger(__name__)

_limiter = TokenBucket(
    rate=getattr(settings, "RANK_RATE_PER_SECOND", 10.0), burst=getattr(settings, "RANK_RATE_BURST", 30.0)
)


def json_response(body: object, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(body), status=status, content_type="application/json")


def error(code: str, message: str, status: int, field: str | None = None) -> HttpResponse:
    return json_response(error_body(code, message, field), status=status)


def bearer_token(request: HttpRequest, *, extension: bool) -> str:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.headers.get("X-Extension-Token", "").strip() if extension else ""


def read_request(request: HttpRequest) -> ParsedRequest:
    """Size limit, Content-Encoding and lenient parsing; raises RequestError."""
    limit = getattr(settings, "RANK_MAX_BODY_BYTES", 2 * 1024 * 1024)
    too_large = RequestError("too_large", f"The body is larger than {limit} bytes.", status=413)
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise too_large
    try:
        body = request.body
    except RequestDataTooBig:
        raise too_large from None
    if len(body) > limit:
        raise too_large
    return parse_request(decode_body(body, request.headers.get("Content-Encoding", ""), max_bytes=limit))


@csrf_exempt
async def rank(request: HttpRequest) -> HttpResponse:
    received = time.monotonic()
    response = await _rank(request, received)
    prometheus.REQUESTS.labels("rank", str(response.status_code)).inc()
    prometheus.SERVED_SECONDS.labels("rank").observe(time.monotonic() - received)
    return response


async def _rank(request: HttpRequest, received: float) -> HttpResponse:
    if request.method != "POST":
        return error("method_not_allowed", "Use POST.", 405)
    token = bearer_token(request, extension=True)
    if not token:
        return error("unauthenticated", "An extension token is required.", 401)
    if not _limiter.allow(hashlib.sha256(token.encode()).hexdigest()):
        return error("rate_limited", "Too many ranking requests; slow down.", 429)
    try:
        parsed = read_request(request)
    except RequestError as exc:
        return error(exc.code, exc.message, exc.status, exc.field)
    try:
        enrolment = await sync_to_async(serving.load_enrolment, thread_sensitive=False)(token)
    except DatabaseError:  # we cannot tell who this is, but we can still show their feed
        logger.exception("participant lookup failed; answering with the untouched feed")
        return json_response(await serving.serve_unverified(parsed, received=received))
    if enrolment is None:
        return error("unauthenticated", "Unknown extension token.", 401)
    if parsed.session.user_id != enrolment.public_id:
        return error("forbidden", "session.user_id does not belong to this token.", 403, "session.user_id")
    body = await serving.serve_participant(parsed, enrolment, received=received)
    return json_response(body)


@csrf_exempt
async def ranker_service(request: HttpRequest, name: str) -> HttpResponse:
    received = time.monotonic()
    response = await _ranker_service(request, name)
    prometheus.REQUESTS.labels("ranker_service", str(response.status_code)).inc()
    prometheus.SERVED_SECONDS.labels("ranker_service").observe(time.monotonic() - received)
    return response


async def _ranker_service(request: HttpRequest, name: str) -> HttpResponse:
    if request.method != "POST":
        return error("method_not_allowed", "Use POST.", 405)
    key = bearer_token(request, extension=False)
    if not key or not await _service_key_is_active(key):
        return error("unauthenticated", "A valid ranker service key is required.", 401)
    if not serving.ranker_exists(name):
        return error("not_found", f"No ranker named {name!r}.", 404)
    try:
        parsed = read_request(request)
    except RequestError as exc:
        return error(exc.code, exc.message, exc.status, exc.field)
    return json_response(await serving.serve_ranker(parsed, name))


async def _service_key_is_active(key: str) -> bool:
    return await RankerServiceKey.objects.active().filter(key_hash=RankerServiceKey.hash_key(key)).aexists()
