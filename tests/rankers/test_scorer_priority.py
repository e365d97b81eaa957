"""A scorer worker yields the CPU to web processes: its niceness, and its session's (Linux autogroup) when it
leads its own session, as ``run_platform`` and service managers start it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rankers.scoring.worker import session_nice

ROOT = Path(__file__).resolve().parents[2]
AUTOGROUP = Path("/proc/self/autogroup")

YIELD_7 = """
import os, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prc_site.settings")
django.setup()
from rankers.scoring.worker import session_nice, yield_cpu
yield_cpu(7)
print(session_nice(), os.getpriority(os.PRIO_PROCESS, 0))
"""


def run_yield(*, own_session: bool) -> tuple[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", YIELD_7], cwd=ROOT, capture_output=True, text=True, start_new_session=own_session
    )
    assert done.returncode == 0, done.stderr
    group_nice, nice = done.stdout.split()
    return group_nice, int(nice)


def test_a_sessions_niceness_is_read_from_its_autogroup_and_the_root_group_has_none(tmp_path: Path) -> None:
    autogroup = tmp_path / "autogroup"
    autogroup.write_text("/autogroup-1432 nice 7\n")
    assert session_nice(autogroup) == 7
    autogroup.write_text("")  # what a process in the root group reads, as under a container's init
    assert session_nice(autogroup) is None
    assert session_nice(tmp_path / "missing") is None  # a kernel without autogroups


@pytest.mark.skipif(not AUTOGROUP.exists(), reason="a kernel without autogroups")
def test_a_scorer_leading_its_own_session_lowers_the_sessions_priority_too() -> None:
    group_nice, nice = run_yield(own_session=True)
    assert group_nice == "7"
    assert nice == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 7)


@pytest.mark.skipif(not AUTOGROUP.exists(), reason="a kernel without autogroups")
def test_a_scorer_inside_someone_elses_session_leaves_that_session_alone() -> None:
    ours = str(session_nice())  # "None" where this session is the root group, as on some CI machines
    group_nice, nice = run_yield(own_session=False)
    assert group_nice == ours
    assert nice == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 7)
