"""A small demo for tests: ``manage.py seed_demo`` as ``make demo`` runs it (logins, content, the rehearsed
``prc-demo``), with fewer people and weeks, one process and no estimates, so that it takes seconds. Its rehearsal's
slate writer commits on a connection of its own: tests that seed it run with ``transaction=True``."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command

SMALL_DEMO = ("--participants", "12", "--weeks", "3", "--workers", "1", "--no-estimates")
PEOPLE = 12


def seed_small_demo() -> str:
    out = StringIO()
    # A migration loads the instrument library; a transactional test's flush has emptied it since.
    call_command("load_instruments", stdout=StringIO())
    call_command("seed_demo", *SMALL_DEMO, stdout=out)
    return out.getvalue()
