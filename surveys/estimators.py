"""The paper's effect specifications on plain DataFrames (no ORM), estimated with ``linearmodels``.

- **S1**, daily behaviour (supplementary 5.1): Y_it = a_i + d_{t,C_i,d} + b D_it + e_it, with individual
  fixed effects, one fixed effect per (cohort, date, period relative to treatment start) cell, and
  Driscoll-Kraay standard errors (serial and cross-sectional dependence).
- **S3**, survey waves (5.2): Y_it = a_i + d_t + b D_it + e_it, standard errors clustered by participant.

Input contracts (one row per observation):

- daily panel: ``participant``, ``day`` (date), ``arm`` (slug), ``is_control`` (bool), ``cohort`` (the
  enrolment date), ``start`` (the day treatment switched on; empty for control) and the outcome column.
- survey panel: ``participant``, ``period`` (wave order, baseline 0), ``arm``, ``is_control``,
  ``post`` (bool: a follow-up wave) and the outcome column.

Steps of S1:

1. Control participants get a hypothetical start. Pooled: the later of the sample's earliest treatment
   start and ``baseline_days`` after enrolment. Per arm: the arm's start in the same cohort.
2. ``period`` = day - start; ``D`` = 1 for treated participants on and after their start.
3. Pooled, the fixed-effect cell is (cohort, date, period); per arm it is (cohort, period).
4. PanelOLS with entity effects and the cell as the other effect, ``cov_type="kernel"`` (Driscoll-Kraay).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from linearmodels.panel import PanelOLS

logger = logging.getLogger(__name__)

POOLED = "pooled"
CI_Z = 1.959963984540054  # two-sided 95 %


@dataclass(frozen=True)
class Estimate:
    """One coefficient on ``D``: which specification, outcome and sample (``pooled`` or an arm slug)."""

    spec: str
    outcome: str
    sample: str
    estimate: float
    std_error: float
    p_value: float
    n_obs: int
    n_participants: int

    @property
    def ci_low(self) -> float:
        return self.estimate - CI_Z * self.std_error

    @property
    def ci_high(self) -> float:
        return self.estimate + CI_Z * self.std_error

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ci_low": self.ci_low, "ci_high": self.ci_high}

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Estimate:
        return cls(**{key: row[key] for key in cls.__dataclass_fields__})


def control_start(cohort: pd.Series, earliest_start: pd.Timestamp, baseline_days: int) -> pd.Series:
    """Pooled rule for control: the later of the earliest treatment start and ``baseline_days`` after enrolment."""
    after_baseline = cohort + pd.Timedelta(days=baseline_days)
    return after_baseline.where(after_baseline > earliest_start, earliest_start)


def _dates(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    frame = frame.copy()
    for column in columns:
        frame[column] = pd.to_datetime(frame[column])
    return frame


def prepare_daily(panel: pd.DataFrame, *, arm: str | None = None, baseline_days: int = 14) -> pd.DataFrame:
    """Steps 1-3: the sample (all, or ``arm`` and control), ``D`` and the fixed-effect ``cell``."""
    frame = _dates(panel, "day", "cohort", "start")
    if arm is not None:
        frame = frame[frame["is_control"] | (frame["arm"] == arm)]
    treated = frame.loc[~frame["is_control"]]
    if arm is None:
        earliest = treated["start"].min()
        frame.loc[frame["is_control"], "start"] = control_start(
            frame.loc[frame["is_control"], "cohort"], earliest, baseline_days
        )
    else:
        by_cohort = treated.groupby("cohort")["start"].min()
        control = frame["is_control"]
        if by_cohort.empty:  # nobody in the arm: no comparison at all
            return frame.iloc[0:0].assign(period=0, D=0.0, cell=0)
        frame.loc[control, "start"] = frame.loc[control, "cohort"].map(by_cohort)
        frame = frame[frame["start"].notna()]  # a control cohort with nobody in the arm has no comparison
    frame["period"] = (frame["day"] - frame["start"]).dt.days
    frame["D"] = ((~frame["is_control"]) & (frame["period"] >= 0)).astype(float)
    keys = ["cohort", "day", "period"] if arm is None else ["cohort", "period"]
    frame["cell"] = frame.groupby(keys, sort=False).ngroup()
    return frame


def _fit(
    frame: pd.DataFrame, outcome: str, time: str, *, cov_type: str, other: str | None
) -> tuple[float, float, float]:
    data = frame.set_index(["participant", time])
    model = PanelOLS(
        data[outcome].astype(float),
        data[["D"]],
        entity_effects=True,
        time_effects=other is None,
        other_effects=data[[other]] if other else None,
        drop_absorbed=True,
    )
    options: dict[str, Any] = {"cluster_entity": True} if cov_type == "clustered" else {}
    result = model.fit(cov_type=cov_type, **options)
    return float(result.params["D"]), float(result.std_errors["D"]), float(result.pvalues["D"])


def _estimate(spec: str, outcome: str, sample: str, frame: pd.DataFrame, fit: tuple[float, float, float]) -> Estimate:
    beta, error, p_value = fit
    return Estimate(spec, outcome, sample, beta, error, p_value, len(frame), int(frame["participant"].nunique()))


def _identified(frame: pd.DataFrame) -> bool:
    """Both treated and untreated observations of D, and at least two people: otherwise there is no contrast."""
    return frame["D"].nunique() == 2 and frame["participant"].nunique() > 1


def estimate_daily(
    panel: pd.DataFrame, outcome: str, *, arm: str | None = None, baseline_days: int = 14
) -> Estimate | None:
    """S1 for ``outcome``, pooled (``arm=None``) or for one arm against control; None when not identified."""
    frame = prepare_daily(panel, arm=arm, baseline_days=baseline_days)
    frame = frame[frame[outcome].notna()]
    if not _identified(frame):
        return None
    try:
        fit = _fit(frame, outcome, "day", cov_type="kernel", other="cell")
    except ValueError as error:  # e.g. every (cohort, date, period) cell holds one participant: nothing to compare
        logger.info("S1 %s (%s) not identified: %s", outcome, arm or POOLED, error)
        return None
    if not all(math.isfinite(v) for v in fit):  # e.g. an outcome that never varies
        return None
    return _estimate("S1", outcome, arm or POOLED, frame, fit)


def prepare_survey(panel: pd.DataFrame, *, arm: str | None = None) -> pd.DataFrame:
    """S3's sample (all, or ``arm`` and control) and ``D``: a treated participant's follow-up waves."""
    frame = panel if arm is None else panel[panel["is_control"] | (panel["arm"] == arm)]
    frame = frame.copy()
    frame["D"] = ((~frame["is_control"]) & frame["post"]).astype(float)
    return frame


def estimate_survey(panel: pd.DataFrame, outcome: str, *, arm: str | None = None) -> Estimate | None:
    """S3 for ``outcome`` (a standardized index), pooled or for one arm against control."""
    frame = prepare_survey(panel, arm=arm)
    frame = frame[frame[outcome].notna()] if outcome in frame else frame.iloc[0:0]
    if not _identified(frame) or frame["period"].nunique() < 2:
        return None
    fit = _fit(frame, outcome, "period", cov_type="clustered", other=None)
    if not all(math.isfinite(v) for v in fit):
        return None
    return _estimate("S3", outcome, arm or POOLED, frame, fit)


def synthetic_daily_panel(
    *,
    participants: int,
    days: int,
    effect: float | dict[str, float],
    arms: tuple[str, ...] = ("treatment",),
    seed: int = 0,
    first_day: str = "2024-07-01",
    cohorts: int = 8,
    baseline_days: int = 14,
) -> pd.DataFrame:
    """A daily panel with a planted effect per arm (for tests and the benchmark).

    Participants enrol in one of ``cohorts`` weekly cohorts and are observed for ``days`` days from their
    enrolment (``participants * days`` rows); treated ones start ``baseline_days`` after enrolment. The
    outcome is a person level, a common shock per calendar day, noise, and ``effect`` once treated.
    """
    rng = np.random.default_rng(seed)
    effects = effect if isinstance(effect, dict) else dict.fromkeys(arms, effect)
    labels = ["control", *arms]
    arm_of = rng.integers(0, len(labels), participants)
    cohort_of = rng.integers(0, cohorts, participants)
    first = pd.Timestamp(first_day)
    cohort_dates = first + pd.to_timedelta(cohort_of * 7, unit="D")
    person = np.repeat(np.arange(participants), days)
    calendar_day = np.tile(np.arange(days), participants) + cohort_of[person] * 7
    day = first + pd.to_timedelta(calendar_day, unit="D")
    arm = np.asarray(labels)[arm_of][person]
    is_control = arm == "control"
    cohort = cohort_dates[person]
    start = (cohort + pd.Timedelta(days=baseline_days)).to_numpy().copy()
    start[is_control] = np.datetime64("NaT")
    treated = (~is_control) & (day.to_numpy() >= start)
    planted = np.array([effects.get(a, 0.0) for a in labels])[arm_of][person]
    shock = rng.normal(0, 1, days + 7 * cohorts)[calendar_day]
    level = rng.normal(30, 10, participants)[person]
    outcome = level + shock + rng.normal(0, 5, len(person)) + planted * treated
    return pd.DataFrame(
        {
            "participant": person,
            "day": day,
            "arm": arm,
            "is_control": is_control,
            "cohort": cohort,
            "start": pd.to_datetime(start),
            "active_minutes": outcome,
        }
    )
