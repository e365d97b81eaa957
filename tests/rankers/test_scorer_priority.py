"""A scorer worker yields the CPU to web processes: its niceness, and its session's (Linux autogroup) when it
leads its own session, as ``run_platform`` and service managers start it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AUTOGROUP = Path("/proc/self/autogroup")

pytestmark = pytest.mark.skipif(not AUTOGROUP.exists(), reason="a kernel without autogroups")

YIELD_7 = """
import os, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prc_site.settings")
django.setup()
from rankers.scoring.worker import yield_cpu
yield_cpu(7)
print(open("/proc/self/autogroup").read().split()[-1], os.getpriority(os.PRIO_PROCESS, 0))
"""


def run_yield(*, own_session: bool) -> tuple[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", YIELD_7], cwd=ROOT, capture_output=True, text=True, start_new_session=own_session
    )
    assert done.returncode == 0, done.stderr
    group_nice, nice = done.stdout.split()
    return group_nice, int(nice)


def test_a_scorer_leading_its_own_session_lowers_the_sessions_priority_too() -> None:
    group_nice, nice = run_yield(own_session=True)
    assert group_nice == "7"
    assert nice == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 7)


def test_a_scorer_inside_someone_elses_session_leaves_that_session_alone() -> None:
    ours = AUTOGROUP.read_text().split()[-1]
    group_nice, nice = run_yield(own_session=False)
    assert group_nice == ours
    assert nice == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 7)
