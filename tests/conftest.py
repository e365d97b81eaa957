from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from prc_site.celery import app as celery_app
from prc_site.lib import embedded, ratelimit
from rankers import slatelog


def pytest_configure(config: pytest.Config) -> None:
    """Start the embedded PostgreSQL and Redis (importing the settings does not); the session that started
    them stops them when it ends (``pytest_unconfigure``). xdist workers reuse the controller's."""
    if is_controller(config) and not embedded.running():
        config.stash[_STARTED_SERVICES] = True
    embedded.start_configured()


def pytest_unconfigure(config: pytest.Config) -> None:
    if is_controller(config) and config.stash.get(_STARTED_SERVICES, False):
        connection.close()
        embedded.stop_redis()
        embedded.stop_postgres()


def is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


_STARTED_SERVICES = pytest.StashKey[bool]()


@pytest.fixture(autouse=True, scope="session")
def _celery_runs_tasks_eagerly() -> None:
    """Tasks run in-process in tests; tests marked `broker` switch to the real broker and worker."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True


@pytest.fixture(autouse=True)
def _full_rate_limit_buckets() -> None:
    """Rate limits live in process memory; one test's requests must not spend the next one's budget."""
    ratelimit.forget_all()


@pytest.fixture(autouse=True)
def _no_content_remembered_from_another_test() -> None:
    """The slate writer remembers the content it stored in process memory and skips storing it again; a test's
    database does not have what an earlier test stored (rolled back or flushed since)."""
    slatelog.forget_stored_content()


@pytest.fixture(autouse=True)
def _private_scoring_keys(settings: object) -> None:
    """Scores, scoring jobs and their counters live in the shared Redis: each test gets keys of its own."""
    settings.PRC_SCORER_KEY_PREFIX = f"test-scoring:{uuid.uuid4().hex[:12]}"  # type: ignore[attr-defined]


@pytest.fixture
def client() -> Client:
    return Client()


@pytest.fixture
def celery_worker_queue() -> Iterator[str]:
    """A real Celery worker process on the real (embedded) Redis broker, consuming a private queue.

    The worker connects to this test's database, so the test needs
    ``django_db(transaction=True)`` for the worker to see its rows. Send tasks with
    ``apply_async(..., queue=<the yielded name>)``.
    """
    queue = f"test-{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "prc_site.settings",
        "DATABASE_NAME": connection.settings_dict["NAME"],
        "CELERY_BROKER_URL": celery_app.conf.broker_url,
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "prc_site",
            "worker",
            "--pool",
            "solo",
            "-Q",
            queue,
            "-n",
            f"{queue}@%h",
            "-l",
            "warning",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=settings.BASE_DIR,
        env=env,
    )
    celery_app.conf.task_always_eager = False
    try:
        _wait_for_worker(f"{queue}@", worker)
        yield queue
    finally:
        celery_app.conf.task_always_eager = True
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()


def _wait_for_worker(name_prefix: str, worker: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.poll() is None, "the Celery worker exited during start-up"
        replies = celery_app.control.ping(timeout=0.5) or []
        if any(name.startswith(name_prefix) for reply in replies for name in reply):
            return
    raise TimeoutError("the Celery worker did not answer a ping")
