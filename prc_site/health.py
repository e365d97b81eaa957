"""Health answers for load balancers, orchestrators and the demo.

- ``GET /healthz/live``: liveness. The process answers; it depends on nothing, so a database or
  Redis outage never gets a healthy web process restarted.
- ``GET /healthz`` (also ``/healthz/ready``): readiness. 503 only when the database is down (the
  participant pages need it; ``/rank`` would answer every request with the untouched feed). Redis
  down is reported as ``degraded`` with a 200: ``/rank`` does not need it, so the node stays in
  rotation. Redis is pinged on one kept connection, not a new broker connection per poll. ``scorer`` says
  what the scorer workers reported about the configured model (``loaded``, ``failed``, ``unknown``: none has
  started, ``unreadable``; see ``rankers.scoring.readiness``); it never changes the status code, since control
  arms and the untouched feed need no scores.
"""

from __future__ import annotations

import functools

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from prc_site.lib.embedded import redis_py_url

# Short: a health poll must answer before the load balancer's own time-out.
REDIS_TIMEOUT_S = 1.0


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:  # any failure means "down" to a health check
        return False


@functools.cache
def _redis(url: str) -> redis.Redis:
    """One client (and so one kept connection) per broker URL and process."""
    return redis.Redis.from_url(
        redis_py_url(url),
        socket_timeout=REDIS_TIMEOUT_S,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        client_name="prc-health",
    )


def _broker_ok() -> bool:
    try:
        return bool(_redis(str(settings.CELERY_BROKER_URL)).ping())
    except Exception:
        return False


@never_cache
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
def ready(request: HttpRequest) -> JsonResponse:
    from rankers.scoring import identity, readiness  # the rankers app reads its Redis keys from settings

    database, broker = _database_ok(), _broker_ok()
    status = "error" if not database else "ok" if broker else "degraded"
    body = {"status": status, "database": "ok" if database else "down", "broker": "ok" if broker else "down"}
    body["scorer"] = readiness.verdict(identity()).status if broker else "unreadable"
    return JsonResponse(body, status=200 if database else 503)
