import pytest
import redis
from django.conf import settings as django_settings
from django.test import Client

from prc_site.lib.embedded import redis_py_url
from rankers.scoring import identity, readiness

# One worker runs these: the connection test counts the broker's clients named prc-health.
pytestmark = pytest.mark.xdist_group("health")


@pytest.mark.django_db
def test_readiness_reports_database_and_broker_ok(client: Client) -> None:
    for path in ("/healthz", "/healthz/ready"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "database": "ok", "broker": "ok", "scorer": "unknown"}


@pytest.mark.django_db
def test_redis_down_is_degraded_but_keeps_the_node_in_rotation(client: Client, settings, tmp_path) -> None:
    settings.CELERY_BROKER_URL = f"redis+socket://{tmp_path}/redis.sock"  # nothing listens there

    response = client.get("/healthz/ready")

    assert response.status_code == 200
    assert response.json() == {"status": "degraded", "database": "ok", "broker": "down", "scorer": "unreadable"}


@pytest.mark.django_db
def test_readiness_says_when_the_scorer_workers_could_not_load_the_model_without_leaving_rotation(
    client: Client,
) -> None:
    readiness.report("scorer@node-1", identity(), error="ScorerUnavailable: no model in /models/x")

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["scorer"] == "failed"
    readiness.report("scorer@node-1", identity())
    assert client.get("/healthz").json()["scorer"] == "loaded"


def test_liveness_depends_on_nothing(client: Client, settings, tmp_path) -> None:
    """No database access is allowed here (no django_db mark), and the broker is unreachable."""
    settings.CELERY_BROKER_URL = f"redis+socket://{tmp_path}/redis.sock"

    response = client.get("/healthz/live")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def _health_connection_ids() -> list[int]:
    broker = redis.Redis.from_url(redis_py_url(django_settings.CELERY_BROKER_URL))
    return [c["id"] for c in broker.client_list() if c.get("name") == "prc-health"]


@pytest.mark.django_db
def test_health_polls_reuse_one_broker_connection(client: Client) -> None:
    client.get("/healthz")
    first = _health_connection_ids()

    for _ in range(5):
        assert client.get("/healthz").status_code == 200

    assert len(first) == 1
    assert _health_connection_ids() == first
