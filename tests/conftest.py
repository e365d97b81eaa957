from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import Client

from prc_site.celery import app as celery_app


@pytest.fixture(autouse=True, scope="session")
def _celery_runs_tasks_eagerly() -> Iterator[None]:
    """Tasks run in-process in tests; tests marked `broker` switch to the real broker and worker."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield


@pytest.fixture
def client() -> Client:
    return Client()
