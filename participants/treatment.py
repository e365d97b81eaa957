"""When a participant's assigned arm is in effect: the baseline clock and each arm's start per platform.

The only statement of these rules. ``rankers.serving.effective_arm`` decides whose ranker runs for each
slate with ``in_baseline`` and ``arm_has_started``; the effect estimates (``surveys.effects.daily_panel``)
date each participant's treatment start on a platform with ``treatment_start``, the first instant at which
``effective_arm`` gives the assigned arm.
"""

from __future__ import annotations

import datetime as dt


def baseline_ends(installed_at: dt.datetime, baseline_days: int) -> dt.datetime:
    """The baseline clock starts at the extension's first installation (``Participant.enrolled_at``, which a
    reinstall keeps) and runs ``baseline_days`` (``Study.baseline_days``), in which the control arm's ranker runs."""
    return installed_at + dt.timedelta(days=baseline_days)


def arm_starts(start_date: dt.date | None) -> dt.datetime | None:
    """An arm's start on a platform (``Arm.starts_<platform>``, a UTC date) as an instant: 00:00 UTC that day.
    None: the arm has no start on that platform."""
    return None if start_date is None else dt.datetime.combine(start_date, dt.time(), tzinfo=dt.UTC)


def in_baseline(installed_at: dt.datetime, baseline_days: int, now: dt.datetime) -> bool:
    return now < baseline_ends(installed_at, baseline_days)


def arm_has_started(start_date: dt.date | None, now: dt.datetime) -> bool:
    start = arm_starts(start_date)
    return start is not None and now >= start


def treatment_start(installed_at: dt.datetime, baseline_days: int, start_date: dt.date | None) -> dt.datetime | None:
    """The instant the assigned arm's ranker starts running for a participant on a platform: the later of the
    end of their baseline and the arm's start there. None when the arm never starts on that platform."""
    start = arm_starts(start_date)
    return None if start is None else max(baseline_ends(installed_at, baseline_days), start)
