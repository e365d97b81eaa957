import pytest
from django.test import Client


@pytest.mark.django_db
def test_healthz_reports_database_and_broker_ok(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_healthz_reports_broker_down_with_503(client: Client, settings, monkeypatch) -> None:
    from prc_site.celery import app

    monkeypatch.setattr(app.conf, "broker_url", "redis+socket:///nonexistent/redis.sock")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"] == "down"
    assert response.json()["database"] == "ok"
