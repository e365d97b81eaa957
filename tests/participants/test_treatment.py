"""The treatment start per platform: the baseline clock and the arm's start, the later of the two."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from participants.paper import PLATFORMS
from participants.treatment import treatment_start
from rankers.checks import Caps
from rankers.serving import ASSIGNED, ArmInfo, Enrolment, effective_arm

INSTALLED = dt.datetime(2024, 9, 1, 15, 30, tzinfo=dt.UTC)


def test_treatment_starts_when_the_baseline_ends_if_the_arm_started_before() -> None:
    assert treatment_start(INSTALLED, 14, dt.date(2024, 8, 1)) == dt.datetime(2024, 9, 15, 15, 30, tzinfo=dt.UTC)


def test_treatment_starts_at_midnight_utc_of_the_arm_s_start_if_that_is_after_the_baseline() -> None:
    assert treatment_start(INSTALLED, 14, dt.date(2024, 10, 1)) == dt.datetime(2024, 10, 1, tzinfo=dt.UTC)


def test_an_arm_without_a_start_on_the_platform_never_starts_there() -> None:
    assert treatment_start(INSTALLED, 14, None) is None


def test_a_study_without_baseline_starts_treatment_at_installation() -> None:
    assert treatment_start(INSTALLED, 0, dt.date(2024, 9, 1)) == INSTALLED


@given(
    baseline_days=st.integers(0, 30),
    start=st.one_of(st.none(), st.dates(dt.date(2024, 8, 1), dt.date(2024, 11, 1))),
    offset=st.timedeltas(dt.timedelta(days=-5), dt.timedelta(days=60)),
)
def test_the_assigned_ranker_runs_exactly_from_the_treatment_start(
    baseline_days: int, start: dt.date | None, offset: dt.timedelta
) -> None:
    """The estimates' start and the ranking path's effective arm are one rule."""
    starts = dict.fromkeys(PLATFORMS, start)
    arm = ArmInfo(slug="b", ranker_key="uprank_bridging", is_control=False, caps=Caps(0, 0), starts=starts)
    control = ArmInfo(slug="c", ranker_key="control", is_control=True, caps=Caps(0, 0), starts=starts)
    enrolment = Enrolment(public_id="p", study_id=1, withdrawn=False, consent_ok=True, installed_at=INSTALLED,
                          baseline_days=baseline_days, hold_ms=500, ramp_days=0, arm=arm, control=control)  # fmt: skip
    now = INSTALLED + offset
    began = treatment_start(INSTALLED, baseline_days, start)

    assigned = effective_arm(enrolment, "reddit", now).reason == ASSIGNED

    assert assigned == (began is not None and now >= began)
