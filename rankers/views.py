"""Django views for ``POST /rank`` and ``POST /rankers/<name>/rank``: adapters over ``rankers.endpoints``.

Under uvicorn these paths are answered by the bare ASGI app in ``rankers.asgi``
before Django's middleware; these views serve the same functions wherever
Django's own handler runs (the test client, another server).
"""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from prc_site.lib.clients import client_address
from rankers import endpoints


def _incoming(request: HttpRequest) -> endpoints.Incoming:
    headers = {name.lower(): value for name, value in request.headers.items()}
    client = client_address(headers, request.META.get("REMOTE_ADDR") or "")
    try:
        return endpoints.Incoming(request.method or "GET", headers, request.body, client=client)
    except RequestDataTooBig:
        return endpoints.Incoming(request.method or "GET", headers, b"", body_too_large=True, client=client)


def _response(reply: endpoints.Outgoing) -> HttpResponse:
    return HttpResponse(reply.body, status=reply.status, content_type="application/json")


@csrf_exempt
async def rank(request: HttpRequest) -> HttpResponse:
    return _response(await endpoints.rank(_incoming(request)))


@csrf_exempt
async def ranker_service(request: HttpRequest, name: str) -> HttpResponse:
    return _response(await endpoints.ranker_service(_incoming(request), name))
