"""Run the ASGI app in N uvicorn processes, each with its own SO_REUSEPORT socket.

    python -m prc_site.serve --host 127.0.0.1 --port 8000 --workers 2

uvicorn's own ``--workers`` shares one listening socket, and under a burst the
first process to wake accepts most of the new connections while the others
idle. With one socket per process and SO_REUSEPORT, the kernel spreads
connections across processes by their address hash. Held /rank requests then
divide evenly, which is what keeps a 1,000-request burst within its budget.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
from pathlib import Path

import uvicorn


def _socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.set_inheritable(True)
    return sock


def _refuse_a_bad_configuration() -> None:
    """Run Django's system checks (timing against the hold, the production scorer) before listening."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prc_site.settings")
    import django
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    django.setup()
    try:
        call_command("check")
    except SystemCheckError as error:
        sys.exit(str(error))


def _prepare_scoring() -> None:
    """Connect to the scoring queue's broker now, not on the first participant's slate."""
    import django

    django.setup()
    from rankers.scoring.service import prepare

    try:
        prepare()
    except Exception:  # a broker that is down costs scores (the slates fall back), not the web server
        logging.getLogger(__name__).warning("could not reach the broker of the scoring queue", exc_info=True)


def _serve(host: str, port: int, log_level: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prc_site.settings")
    _prepare_scoring()
    config = uvicorn.Config("prc_site.asgi:application", log_level=log_level, access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[_socket(host, port)])


def _share_metrics() -> None:
    """Have the worker processes keep their Prometheus counts in one fresh folder (see rankers.prometheus).

    Set before the workers start: prometheus_client picks its storage when it is imported.
    """
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        for stale in Path(folder).glob("*.db"):  # counts of an earlier run
            stale.unlink()
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="prc-metrics-")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prc_site.settings")
    from prc_site.lib.embedded import start_configured

    start_configured()  # the embedded PostgreSQL and Redis, unless the settings name external ones
    _refuse_a_bad_configuration()
    if args.workers == 1:
        _serve(args.host, args.port, args.log_level)
        return
    _share_metrics()
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_serve, args=(args.host, args.port, args.log_level), daemon=False)
        for _ in range(args.workers)
    ]
    for worker in workers:
        worker.start()

    def stop(signum: int, frame: object) -> None:
        for worker in workers:
            if worker.is_alive() and worker.pid is not None:
                os.kill(worker.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for worker in workers:
        worker.join()
    sys.exit(max((w.exitcode or 0) for w in workers))


if __name__ == "__main__":
    main()
