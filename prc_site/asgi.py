"""The ASGI application (uvicorn serves it).

``/rank`` and ``/rankers/<name>/rank`` go to the bare ranking app, which skips
Django's middleware chain (see ``rankers.endpoints``), the extension's
``GET /api/v1/extension/in-feed/next`` to ``surveys.in_feed_asgi`` and its
``POST /api/v1/extension/events`` to ``participants.events_asgi``; everything
else goes to Django. Static files are served by Django's ASGI static handler (WhiteNoise is
WSGI-only); in a larger deployment the proxy or a CDN serves ``STATIC_ROOT``.
"""

import gc
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prc_site.settings")
django_application = ASGIStaticFilesHandler(get_asgi_application())

from participants import events_asgi as events  # noqa: E402  (needs the app registry ready)
from rankers import asgi as ranking  # noqa: E402
from surveys import in_feed_asgi as in_feed  # noqa: E402

# Everything loaded so far lives as long as the process: keep the cyclic garbage collector from
# rescanning it, and collect young objects less often (each held request keeps its parsed slate alive).
gc.freeze()
gc.set_threshold(*(int(x) for x in os.environ.get("PRC_GC_THRESHOLD", "20000,20,20").split(",")))


async def application(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[Mapping[str, Any]], Awaitable[None]],
) -> None:
    if ranking.handles(scope):
        await ranking.app(scope, receive, send)
    elif in_feed.handles(scope):
        await in_feed.app(scope, receive, send)
    elif events.handles(scope):
        await events.app(scope, receive, send)
    elif scope["type"] == "lifespan":
        await lifespan(receive, send)
    else:
        await django_application(scope, receive, send)


async def lifespan(
    receive: Callable[[], Awaitable[dict[str, Any]]], send: Callable[[Mapping[str, Any]], Awaitable[None]]
) -> None:
    """On shutdown (after uvicorn has answered the requests in flight) the slate writer writes what it
    still holds, or pushes it to the Redis fallback, and the hot path's connections close."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await ranking.shutdown()
            await events.shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return
