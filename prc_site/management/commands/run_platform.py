"""Run the whole platform in the foreground: web (ASGI), a Celery worker, a scorer worker and beat.

This is what ``make demo`` calls. It starts the embedded PostgreSQL and Redis
(unless DATABASE_URL / CELERY_BROKER_URL point elsewhere) and stops them when
it ends (unless ``--keep-services``); the child processes reuse them. The scorer worker consumes only the
scoring queue and refuses to start if its backend does not load, which stops the platform with its message.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.urls import reverse

from participants.management.commands.seed_demo import STUDY_SLUG
from prc_site.lib.embedded import data_dir, start_configured


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


# The demo study's research pages that show its rehearsal best (its data comes from ``manage.py seed_demo``'s dress
# rehearsal, with planted effects).
REHEARSAL_PAGES = {"effects": "surveys:effects", "balance": "surveys:balance", "funnel": "dashboards:funnel"}


def rehearsal_links(url: str) -> dict[str, str]:
    """The demo rehearsal's research pages on the server at ``url``."""
    return {name: f"{url}{reverse(route)}?study={STUDY_SLUG}" for name, route in REHEARSAL_PAGES.items()}


def site_url(environ: Mapping[str, str], server_url: str) -> str:
    """The site URL that participant links use: ``PRC_SITE_URL`` when it is set, else this server's own URL."""
    return environ.get("PRC_SITE_URL") or server_url


class Command(BaseCommand):
    help = "Migrate, optionally seed the demo study, then run web, worker, scorer worker and beat until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_WORKERS", "1")))
        parser.add_argument(
            "--seed-demo",
            action="store_true",
            help="Create the demo logins and content, and rehearse the demo study (four simulated weeks).",
        )
        parser.add_argument(
            "--scorer-workers",
            type=int,
            default=settings.PRC_SCORER_WORKERS,
            help="Processes of the attribute scorer worker (PRC_SCORER_WORKERS).",
        )
        parser.add_argument("--keep-services", action="store_true", help="Leave PostgreSQL and Redis running.")

    def handle(self, *args: Any, **options: Any) -> None:
        # Stop the children on SIGTERM/SIGHUP too (a killed terminal, `timeout`), and on SIGINT even when
        # it was inherited as ignored (a shell starts background jobs that way).
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, _interrupt)
        url = f"http://{options['host']}:{options['port']}"
        # Links in the messages the seeders and workers send point at this server unless told otherwise.
        os.environ["PRC_SITE_URL"] = settings.PRC_SITE_URL = site_url(os.environ, url)
        start_configured()
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("database migrated")
        if options["seed_demo"]:
            # It skips the rehearsal when the demo study exists, so restarting the demo keeps its data.
            call_command("seed_demo", stdout=self.stdout)
        children = self._start_children(options)
        try:
            self._wait_healthy(url, children)
            self.stdout.write(self.style.SUCCESS(f"\nPlatform running at {url}/"))
            self.stdout.write(f"  researcher login: {url}/admin/   (funnel: {url}/research/funnel/)")
            if options["seed_demo"]:
                self.stdout.write(
                    "  demo logins:      pi, reader, ops (one role each), admin (superuser);"
                    " password prc-demo-pass or $DEMO_PASSWORD"
                )
                links = rehearsal_links(url)
                self.stdout.write(
                    f"  demo study:       {links['effects']}   (planted effects; balance: {links['balance']},"
                    f" funnel: {links['funnel']})"
                )
            self.stdout.write(
                f"  ranking pages:    {url}/research/ranking/timelines/   {url}/research/ranking/delivery/"
            )
            self.stdout.write(f"  API schema:       {url}/api/schema/   health: {url}/healthz")
            self.stdout.write("Press Ctrl-C to stop.\n")
            self._supervise(children)
        except KeyboardInterrupt:
            pass
        finally:
            # A second Ctrl-C (or the SIGTERM that often follows) must not cut the shutdown short.
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, signal.SIG_IGN)
            self._stop_children(children)
            if not options["keep_services"]:
                call_command("stop_services", stdout=self.stdout)

    def _start_children(self, options: dict[str, Any]) -> dict[str, subprocess.Popen[bytes]]:
        python = sys.executable
        beat_schedule = str(data_dir() / "celerybeat-schedule")
        celery = [python, "-m", "celery", "-A", "prc_site"]
        commands = {
            "web": [
                python,
                "-m",
                "prc_site.serve",
                "--host",
                options["host"],
                "--port",
                str(options["port"]),
                "--workers",
                str(options["web_workers"]),
                "--log-level",
                "info",
            ],
            "worker": [*celery, "worker", "-l", "info", "-Q", "celery", "-n", "worker@%h", "--concurrency", "2"],
            # Attribute scoring has workers of its own: a slow model never holds up the other tasks, and the
            # ranking path never waits behind a rollup. A deployment runs more of them, on more machines.
            "scorer": [
                *[*celery, "worker", "-l", "info", "-Q", settings.PRC_SCORER_QUEUE, "-n", "scorer@%h"],
                *["--concurrency", str(options["scorer_workers"])],
            ],
            "beat": [*celery, "beat", "-l", "info", "-s", beat_schedule],
        }
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "prc_site.settings", "PYTHONUNBUFFERED": "1"}
        return {
            name: subprocess.Popen(cmd, cwd=settings.BASE_DIR, env=env, start_new_session=True)
            for name, cmd in commands.items()
        }

    def _wait_healthy(self, url: str, children: dict[str, subprocess.Popen[bytes]], timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive(children)
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310 (loopback)
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"the web server did not answer {url}/healthz within {timeout:.0f} s")

    def _supervise(self, children: dict[str, subprocess.Popen[bytes]]) -> None:
        while True:
            self._check_alive(children)
            time.sleep(1)

    @staticmethod
    def _check_alive(children: dict[str, subprocess.Popen[bytes]]) -> None:
        for name, child in children.items():
            if child.poll() is not None:
                raise RuntimeError(f"{name} exited with status {child.returncode}")

    @staticmethod
    def _stop_children(children: dict[str, subprocess.Popen[bytes]]) -> None:
        for child in children.values():
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        for child in children.values():
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
