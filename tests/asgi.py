"""Requests through ``prc_site.asgi.application``, the entry point uvicorn serves, as a server would send them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.db import connections

from participants import events_asgi
from prc_site.asgi import application
from prc_site.lib import asyncdb


@dataclass
class AsgiResponse:
    status_code: int
    headers: dict[str, str]
    content: bytes

    def json(self) -> Any:
        return orjson.loads(self.content)


async def acall(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None, *, query: str = "", chunk: int = 0
) -> AsgiResponse:
    """One request on the running event loop; the client stays connected until the answer is sent.
    ``chunk`` splits the body into several messages."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "path": path,
        "raw_path": path.encode(), "query_string": query.encode(), "root_path": "", "scheme": "http",
        "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }  # fmt: skip
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)] if chunk else [body]
    messages = [{"type": "http.request", "body": p, "more_body": n < len(pieces) - 1} for n, p in enumerate(pieces)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: Any) -> None:
        sent.append(dict(message))

    await application(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return AsgiResponse(start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, content)


async def close_loop_connections() -> None:
    """A fresh event loop per call has its own pools: close them before the loop ends."""
    await events_asgi.shutdown()
    await asyncdb.close_loop_pool()
    await sync_to_async(connections.close_all)()


class AsgiClient:
    """Enough of ``django.test.Client.post`` for JSON APIs, answered by the ASGI entry point on a fresh loop."""

    def post(self, path: str, data: Any, content_type: str = "application/json", **extra: str) -> AsgiResponse:
        headers = {"Content-Type": content_type}
        if "HTTP_AUTHORIZATION" in extra:
            headers["Authorization"] = extra["HTTP_AUTHORIZATION"]
        body = data if isinstance(data, bytes) else orjson.dumps(data)

        async def call() -> AsgiResponse:
            try:
                return await acall("POST", path, body, headers)
            finally:
                await close_loop_connections()

        return asyncio.run(call())
