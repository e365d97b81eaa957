"""S1 and S3 on synthetic panels with planted effects (pure DataFrames, no database)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from surveys import estimators


@pytest.fixture(scope="module")
def daily() -> pd.DataFrame:
    return estimators.synthetic_daily_panel(
        participants=400, days=70, effect={"uprank": 2.0, "downrank": -1.0}, arms=("uprank", "downrank"), seed=3
    )


def survey_panel(*, participants: int, effect: dict[str, float], seed: int = 0) -> pd.DataFrame:
    """Three waves; a person level, a wave shock, noise, and the arm's effect on follow-up waves."""
    rng = np.random.default_rng(seed)
    labels = ["control", *effect]
    arm = np.asarray(labels)[rng.integers(0, len(labels), participants)]
    level = rng.normal(0, 1, participants)
    rows = []
    for period, shock in enumerate((0.0, 0.3, -0.2)):
        noise = rng.normal(0, 0.5, participants)
        planted = np.array([effect.get(a, 0.0) for a in arm]) * (period > 0)
        for i in range(participants):
            rows.append(
                (f"p{i}", period, arm[i], arm[i] == "control", period > 0, level[i] + shock + noise[i] + planted[i])
            )
    return pd.DataFrame(rows, columns=["participant", "period", "arm", "is_control", "post", "polarization"])


def test_control_start_is_the_later_of_the_earliest_start_and_two_weeks_after_enrolment() -> None:
    cohort = pd.Series(pd.to_datetime(["2024-07-01", "2024-07-20"]))
    starts = estimators.control_start(cohort, pd.Timestamp("2024-07-10"), baseline_days=14)
    assert list(starts) == [pd.Timestamp("2024-07-15"), pd.Timestamp("2024-08-03")]
    late = estimators.control_start(cohort, pd.Timestamp("2024-07-30"), baseline_days=14)
    assert list(late) == [pd.Timestamp("2024-07-30"), pd.Timestamp("2024-08-03")]


def test_treatment_indicator_switches_on_at_each_treated_persons_start_and_never_for_control(
    daily: pd.DataFrame,
) -> None:
    frame = estimators.prepare_daily(daily)
    treated = frame[~frame["is_control"]]
    assert (treated["D"] == (treated["day"] >= treated["start"]).astype(float)).all()
    assert (frame.loc[frame["is_control"], "D"] == 0).all()
    assert frame.loc[frame["is_control"], "start"].notna().all()


def test_per_arm_sample_gives_control_its_cohorts_start_in_that_arm(daily: pd.DataFrame) -> None:
    frame = estimators.prepare_daily(daily, arm="uprank")
    assert set(frame["arm"]) == {"control", "uprank"}
    arm_start = frame[frame["arm"] == "uprank"].groupby("cohort")["start"].min()
    control = frame[frame["is_control"]]
    assert (control["start"] == control["cohort"].map(arm_start)).all()


def test_s1_per_arm_recovers_each_planted_effect_within_its_confidence_interval(daily: pd.DataFrame) -> None:
    for arm, planted in (("uprank", 2.0), ("downrank", -1.0)):
        result = estimators.estimate_daily(daily, "active_minutes", arm=arm)
        assert result is not None
        assert result.sample == arm
        assert result.ci_low < planted < result.ci_high
        assert result.ci_high - result.ci_low < 1.5  # informative, not a CI that covers everything


def test_s1_pooled_recovers_a_common_planted_effect_and_finds_none_where_none_was_planted() -> None:
    planted = estimators.synthetic_daily_panel(participants=400, days=70, effect=1.5, arms=("a", "b"), seed=5)
    result = estimators.estimate_daily(planted, "active_minutes")
    assert result is not None
    assert result.sample == estimators.POOLED
    assert result.ci_low < 1.5 < result.ci_high
    assert result.n_participants == 400
    assert result.n_obs == len(planted)
    null = estimators.synthetic_daily_panel(participants=400, days=70, effect=0.0, arms=("a", "b"), seed=6)
    none = estimators.estimate_daily(null, "active_minutes")
    assert none is not None
    assert none.ci_low < 0 < none.ci_high


def test_s1_without_any_treated_day_is_not_estimated() -> None:
    panel = estimators.synthetic_daily_panel(participants=50, days=10, effect=1.0, seed=1)
    assert estimators.estimate_daily(panel, "active_minutes") is None


def test_s1_whose_fixed_effects_nest_the_participants_is_not_estimated_instead_of_failing_the_run() -> None:
    """Two treated people in different cohorts and no control: each (cohort, date, period) cell is one person's."""
    panel = estimators.synthetic_daily_panel(participants=2, days=20, effect=2.0, seed=0, cohorts=4)
    assert panel.groupby("participant")["cohort"].first().nunique() == 2
    assert not panel["is_control"].any()

    assert estimators.estimate_daily(panel, "active_minutes") is None


def test_s3_recovers_planted_effects_pooled_and_per_arm_with_errors_clustered_by_participant() -> None:
    panel = survey_panel(participants=900, effect={"uprank": 0.3, "downrank": -0.2}, seed=2)
    uprank = estimators.estimate_survey(panel, "polarization", arm="uprank")
    downrank = estimators.estimate_survey(panel, "polarization", arm="downrank")
    pooled = estimators.estimate_survey(panel, "polarization")
    assert uprank is not None
    assert uprank.ci_low < 0.3 < uprank.ci_high
    assert uprank.ci_low > 0
    assert downrank is not None
    assert downrank.ci_low < -0.2 < downrank.ci_high
    assert downrank.ci_high < 0
    assert pooled is not None
    assert pooled.ci_low < 0.05 < pooled.ci_high
    assert pooled.n_obs == 2700
    assert pooled.n_participants == 900


def test_s3_without_follow_up_waves_or_outcome_is_not_estimated() -> None:
    panel = survey_panel(participants=30, effect={"uprank": 0.3})
    assert estimators.estimate_survey(panel[panel["period"] == 0], "polarization") is None
    assert estimators.estimate_survey(panel, "wellbeing") is None


def test_estimate_round_trips_through_its_stored_form() -> None:
    result = estimators.Estimate("S3", "trust", "pooled", 0.1, 0.05, 0.04, 10, 5)
    stored = result.as_dict()
    assert stored["ci_low"] == pytest.approx(0.1 - 1.959963984540054 * 0.05)
    assert estimators.Estimate.from_dict(stored) == result
