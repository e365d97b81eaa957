"""Time the survey schedule (``surveys.messaging.run_schedule``) over many enrolled participants.

    python benchmarks/survey_schedule_bench.py [--participants 100000]

Uses its own embedded PostgreSQL (``PRC_DATA_DIR``, default /tmp/prc-bench-surveys, stopped at the end) and
database (``prc_bench_surveys``, created and migrated here, emptied first) and Django's in-memory email
backend. Reports, for each step, the wall time and the number of SQL
queries, "evaluate" (the scheduler's decisions: invite, expire, claim) apart from "send" (rendering and
handing each email to the backend). A per-participant query loop would show as queries growing with the
participant count:

1. invite: every participant gets the baseline invitation;
2. idle: the next run a few minutes later, when nothing is due;
3. remind: three days later, when every invitation's first reminder is due.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prc_site.settings")
os.environ["DATABASE_NAME"] = "prc_bench_surveys"
os.environ.setdefault("PRC_DATA_DIR", "/tmp/prc-bench-surveys")
os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"

import django
import psycopg

django.setup()

from django.core import mail  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from participants.models import Participant, Study  # noqa: E402
from prc_site.lib.embedded import start_configured, stop_postgres, stop_redis  # noqa: E402
from surveys import messaging  # noqa: E402
from surveys.models import Instrument, Wave  # noqa: E402


def create_database() -> None:
    params = connection.get_connection_params()
    params["dbname"] = "postgres"
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS prc_bench_surveys")
        admin.execute("CREATE DATABASE prc_bench_surveys")


def seed(n: int, now: dt.datetime) -> None:
    call_command("migrate", verbosity=0)
    call_command("load_instruments", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
    study = Study.objects.create(name="Bench", slug="bench", status=Study.Status.RUNNING)
    Wave.objects.create(
        study=study,
        slug="baseline",
        name="Baseline survey",
        kind="baseline",
        instrument=Instrument.objects.get(slug="prc-baseline"),
        opens_after_days=0,
        open_days=30,
    )
    signup = now - dt.timedelta(hours=1)
    Participant.objects.bulk_create(
        (
            Participant(
                study=study,
                stage="enrolled",
                email=f"p{i}@example.org",
                created_at=signup,
                consented_at=signup,
                enrolled_at=signup,
            )
            for i in range(n)
        ),
        batch_size=10_000,
    )


def step(label: str, n: int, at: dt.datetime) -> None:
    """Evaluate (invite, expire, claim: the scheduler's decisions) and send (render and email), timed apart."""
    mail.outbox = []
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        created = messaging.create_invitations(at=at)
        invited = time.perf_counter()
        expired = messaging.expire_invitations(at=at)
        claimed = messaging.claim_due(at=at)
        evaluated = time.perf_counter()
        evaluate_queries = len(queries)
        messaging.send_claimed(claimed, at=at)
        sent = time.perf_counter()
    print(
        f"{label:<7} evaluate {evaluated - started:6.1f} s (invite {invited - started:.1f} s, expire and claim "
        f"{evaluated - invited:.1f} s), {evaluate_queries} queries ({evaluate_queries / n:.6f} per participant)   "
        f"send {sent - evaluated:6.1f} s, {len(queries) - evaluate_queries} queries   "
        f"created {created}, expired {expired}, claimed {len(claimed)}, emails {len(mail.outbox)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--participants", type=int, default=100_000)
    n = parser.parse_args().participants
    start_configured()  # after the arguments: `--help` starts no server
    create_database()
    now = timezone.now()
    began = time.perf_counter()
    seed(n, now)
    print(f"seeded {n} enrolled participants in {time.perf_counter() - began:.1f} s")
    step("invite", n, now)
    step("idle", n, now + dt.timedelta(minutes=15))
    step("remind", n, now + dt.timedelta(days=3, minutes=1))
    connection.close()
    stop_postgres()
    stop_redis()


if __name__ == "__main__":
    main()
