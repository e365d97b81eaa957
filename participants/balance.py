"""Balance and attrition checks: Table S18 (balance), figure S11 (retention) and a CONSORT flow by arm and wave.

The statistics are pure functions of plain rows; the two queries at the end read participants only
(baseline covariates come from the surveys app, which calls ``balance_rows`` with them; Table S19,
the differential-attrition regressions, is ``surveys.dashboard.attrition``).

- ``balance_rows``: per covariate, control against the pooled treatment arms and against each arm:
  means, standard deviations, the difference in means, the standardized difference (difference over
  the square root of the mean of the two variances) and the Welch two-sample t-test's p-value.
- ``retention_curve``: per arm and day, the share of everyone ever included in the arm who is still
  in the study that day (included on or before it and not yet withdrawn or uninstalled).
- ``consort_flow``: per arm, randomized → installed → included → each wave's invited and completed.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from django.db.models import Count, Max, Q
from scipy import stats

from participants.dashboard import ConsortRow
from participants.models import Participant, Study

TREATMENT = "Treatment"  # the pooled non-control arms, as in Table S18's "Prosocial Ranking" column


@dataclass(frozen=True)
class Subject:
    """One included participant: arm, whether that arm is control, and baseline covariates (None: missing)."""

    arm: str
    is_control: bool
    covariates: Mapping[str, float | None]


@dataclass(frozen=True)
class BalanceRow:
    covariate: str
    group: str  # TREATMENT or an arm
    control_n: int
    control_mean: float | None
    control_sd: float | None
    group_n: int
    group_mean: float | None
    group_sd: float | None
    difference: float | None
    std_difference: float | None
    p_value: float | None


def _mean_sd(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def welch_p_value(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of Welch's t-test; None with fewer than two values in a group or no variance at all."""
    if len(a) < 2 or len(b) < 2 or (statistics.variance(a) == 0 and statistics.variance(b) == 0):
        return None
    return float(stats.ttest_ind(b, a, equal_var=False).pvalue)


def compare(covariate: str, group: str, control: Sequence[float], treated: Sequence[float]) -> BalanceRow:
    control_mean, control_sd = _mean_sd(control)
    group_mean, group_sd = _mean_sd(treated)
    difference = group_mean - control_mean if group_mean is not None and control_mean is not None else None
    pooled_sd = math.sqrt((control_sd**2 + group_sd**2) / 2) if control_sd is not None and group_sd is not None else 0
    return BalanceRow(
        covariate=covariate,
        group=group,
        control_n=len(control),
        control_mean=control_mean,
        control_sd=control_sd,
        group_n=len(treated),
        group_mean=group_mean,
        group_sd=group_sd,
        difference=difference,
        std_difference=difference / pooled_sd if difference is not None and pooled_sd > 0 else None,
        p_value=welch_p_value(control, treated),
    )


def balance_rows(subjects: Sequence[Subject], covariates: Sequence[str]) -> list[BalanceRow]:
    """Table S18, pooled (``TREATMENT``) and per arm: for each covariate, control against each group.

    A participant missing a covariate is left out of that covariate's row only.
    """
    arms = sorted({s.arm for s in subjects if not s.is_control})
    groups: list[tuple[str, list[Subject]]] = [(TREATMENT, [s for s in subjects if not s.is_control])]
    groups += [(arm, [s for s in subjects if s.arm == arm]) for arm in arms]
    control = [s for s in subjects if s.is_control]
    rows = []
    for group, members in groups:
        for covariate in covariates:
            rows.append(compare(covariate, group, _values(control, covariate), _values(members, covariate)))
    return rows


def _values(subjects: Iterable[Subject], covariate: str) -> list[float]:
    return [float(v) for s in subjects if (v := s.covariates.get(covariate)) is not None]


# --- Retention (figure S11) ----------------------------------------------------------------------


@dataclass(frozen=True)
class Stay:
    """When one participant was included and when (if ever) they left the study (withdrew or uninstalled)."""

    arm: str
    included_on: dt.date
    left_on: dt.date | None


@dataclass(frozen=True)
class RetentionPoint:
    arm: str
    day: dt.date
    present: int
    ever_included: int

    @property
    def share(self) -> float:
        return self.present / self.ever_included if self.ever_included else 0.0


def retention_curve(stays: Sequence[Stay], start: dt.date, end: dt.date) -> list[RetentionPoint]:
    """Figure S11: per arm and day in [start, end], those in the study that day out of all ever included.

    Someone counts on the day they are included and stops counting on the day they left.
    """
    points = []
    for arm in sorted({stay.arm for stay in stays}):
        members = [stay for stay in stays if stay.arm == arm]
        day = start
        while day <= end:
            present = sum(1 for s in members if s.included_on <= day and (s.left_on is None or s.left_on > day))
            points.append(RetentionPoint(arm, day, present, len(members)))
            day += dt.timedelta(days=1)
    return points


def left_on(withdrawn: dt.date | None, last_uninstall: dt.date | None, installs_left: int) -> dt.date | None:
    """The day someone left: withdrawal, or the last uninstall once no installed copy of the extension remains."""
    uninstalled = last_uninstall if installs_left == 0 else None
    days = [d for d in (withdrawn, uninstalled) if d is not None]
    return min(days) if days else None


def stays(study: Study) -> list[Stay]:
    """Every included real participant's stay, in the study's local days."""
    return list(stays_by_participant(study).values())


def stays_by_participant(study: Study) -> dict[int, Stay]:
    """``stays`` by participant id (the daily panel follows each participant until the day they left)."""
    tz = zoneinfo.ZoneInfo(study.timezone)
    rows = (
        Participant.objects.real()
        .included()
        .filter(study=study, assignment__isnull=False)
        .annotate(
            installs_left=Count("installs", filter=Q(installs__uninstalled_at__isnull=True)),
            last_uninstall=Max("installs__uninstalled_at"),
        )
        .values_list("pk", "assignment__arm__name", "included_at", "withdrawn_at", "last_uninstall", "installs_left")
    )

    def day(at: dt.datetime | None) -> dt.date | None:
        return at.astimezone(tz).date() if at is not None else None

    result = {}
    for pk, arm, included, withdrawn, uninstalled, remaining in rows:
        included_on = day(included)
        if included_on is not None:  # always, by the filter; says so to the type checker
            result[pk] = Stay(arm, included_on, left_on(day(withdrawn), day(uninstalled), remaining))
    return result


# --- CONSORT flow by arm and wave ----------------------------------------------------------------


@dataclass(frozen=True)
class WaveCount:
    wave: str
    invited: int
    completed: int


@dataclass(frozen=True)
class ConsortArm:
    arm: str
    assigned: int
    installed: int
    included: int
    withdrawn: int
    waves: list[WaveCount]


def consort_flow(arms: Sequence[ConsortRow], waves: Sequence[tuple[str, str, int, int]]) -> list[ConsortArm]:
    """Join the per-arm stages with each wave's (wave, arm, invited, completed); every arm lists every wave."""
    wave_names = list(dict.fromkeys(wave for wave, *_ in waves))
    counts = {(wave, arm): (invited, completed) for wave, arm, invited, completed in waves}
    return [
        ConsortArm(
            arm=row.arm,
            assigned=row.assigned,
            installed=row.installed,
            included=row.included,
            withdrawn=row.withdrawn,
            waves=[WaveCount(wave, *counts.get((wave, row.arm), (0, 0))) for wave in wave_names],
        )
        for row in arms
    ]
