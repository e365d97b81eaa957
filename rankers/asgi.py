"""A bare ASGI app for the ranking endpoints, mounted in front of Django by ``prc_site.asgi``.

It reads the body (stopping past the size limit), calls the same functions as
the Django views, and writes the JSON reply, without Django's middleware chain
or request signals (see ``rankers.endpoints`` for why).
"""

from __future__ import annotations

import re

from django.conf import settings

from prc_site.lib import asyncdb
from prc_site.lib.bare_asgi import Receive, Scope, Send, header_map, read_body
from prc_site.lib.clients import client_address
from rankers import endpoints, slatelog
from rankers.scoring import store as scoring_store

SERVICE_PATH = re.compile(r"^/rankers/(?P<name>[^/]+)/rank$")


def handles(scope: Scope) -> bool:
    """Whether this app answers the request (exact paths only; anything else goes to Django)."""
    return scope["type"] == "http" and (scope["path"] == "/rank" or SERVICE_PATH.match(scope["path"]) is not None)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    incoming = await _read(scope, receive)
    path = scope["path"]
    if path == "/rank":
        reply = await endpoints.rank(incoming)
    else:
        match = SERVICE_PATH.match(path)
        assert match is not None  # handles() checked it
        reply = await endpoints.ranker_service(incoming, match["name"])
    await send(
        {
            "type": "http.response.start",
            "status": reply.status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(reply.body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": reply.body})


async def _read(scope: Scope, receive: Receive) -> endpoints.Incoming:
    headers = header_map(scope)
    client = client_address(headers, (scope.get("client") or ("",))[0])
    body = await read_body(receive, settings.RANK_MAX_BODY_BYTES)
    if body is None:
        return endpoints.Incoming(scope["method"], headers, b"", body_too_large=True, client=client)
    return endpoints.Incoming(scope["method"], headers, body, client=client)


async def shutdown() -> None:
    """Flush this event loop's slate writer and close its connections (the ASGI lifespan's shutdown)."""
    await slatelog.close_writer()
    await asyncdb.close_loop_pool()
    await scoring_store.close_async_client()
