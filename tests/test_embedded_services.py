"""The embedded PostgreSQL and Redis: nothing starts them by importing the settings; the entry points do.

Each test works on a fresh data folder of its own (as on a fresh clone), never the suite's servers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from prc_site.lib import embedded

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fresh_data_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: its folders are private to root, and PostgreSQL runs as its own user when we are root.
    folder = Path(tempfile.mkdtemp(prefix="prc-fresh-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        embedded.stop_redis(folder)
        embedded.stop_postgres(folder)
        shutil.rmtree(folder, ignore_errors=True)


def _env(data_dir: Path) -> dict[str, str]:
    env = {**os.environ, "PRC_DATA_DIR": str(data_dir), "DJANGO_SETTINGS_MODULE": "prc_site.settings"}
    for name in ("DATABASE_URL", "DATABASE_NAME", "CELERY_BROKER_URL", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    return env


def _run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=_env(data_dir), capture_output=True, text=True, timeout=600
    )


def test_importing_the_settings_starts_no_server(fresh_data_dir: Path) -> None:
    code = (
        "import django; django.setup(); from django.conf import settings; print(settings.DATABASES['default']['HOST'])"
    )

    done = _run(fresh_data_dir, "-c", code)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(fresh_data_dir / "postgres")  # where the server will listen
    assert not (fresh_data_dir / "postgres" / "postmaster.pid").exists()
    assert not embedded.redis_socket(fresh_data_dir).exists()
    assert not embedded.running(fresh_data_dir)


def test_manage_py_commands_start_the_servers_on_a_fresh_clone_and_stop_services_stops_them(
    fresh_data_dir: Path,
) -> None:
    migrated = _run(fresh_data_dir, "manage.py", "migrate", "--verbosity", "0")
    assert migrated.returncode == 0, migrated.stderr
    seeded = _run(
        fresh_data_dir, "manage.py", "shell", "-c", "from tests.factories import ArmFactory; ArmFactory(slug='qa')"
    )
    assert seeded.returncode == 0, seeded.stderr

    enrolled = _run(fresh_data_dir, "manage.py", "enroll_test_participant", "--arm", "qa")

    assert enrolled.returncode == 0, enrolled.stderr
    assert "token: " in enrolled.stdout
    assert embedded.running(fresh_data_dir)
    stopped = _run(fresh_data_dir, "manage.py", "stop_services")
    assert stopped.returncode == 0, stopped.stderr
    assert not embedded.running(fresh_data_dir)


def test_a_test_session_stops_the_servers_it_started(fresh_data_dir: Path) -> None:
    session = _run(
        fresh_data_dir,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:randomly",
        "tests/test_health.py::test_readiness_reports_database_and_broker_ok",
    )

    assert session.returncode == 0, session.stdout + session.stderr
    assert "1 passed" in session.stdout
    assert (fresh_data_dir / "postgres" / "PG_VERSION").exists()  # it did start a cluster here
    assert not embedded.running(fresh_data_dir)
