"""S1 on a study's real daily panel: the behaviour rollup, each participant's treatment start, the page."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from django.utils import timezone

from participants.models import Arm, DailyBehaviour, Participant, Study
from participants.roles import PI, READER
from rankers.management.commands.enroll_test_participant import create_test_participant
from surveys import effects
from surveys.models import EffectRun
from tests.factories import login

pytestmark = pytest.mark.django_db

FIRST = dt.datetime(2024, 9, 2, 15, tzinfo=dt.UTC)  # the first cohort's installation (11:00 in New York)
PLANTED = 12.0  # more active minutes a day on Facebook once the bridging ranker runs there
DAYS = 42


def hand_built_panel(study: Study, per_arm: int = 12) -> dict[int, dt.date]:
    """Control and Uprank Bridging participants in three weekly cohorts, each observed for ``DAYS`` days of
    Facebook, Reddit and X use. Bridging starts on Facebook and X (not Reddit) on 1 September, before anyone's
    baseline ends, so each treated person's start is the end of their own 14-day baseline. Returns each
    treated participant's expected start day."""
    study.timezone = "America/New_York"
    study.save(update_fields=["timezone"])
    bridging = Arm.objects.get(study=study, slug="uprank_bridging")
    Arm.objects.filter(pk=bridging.pk).update(starts_facebook=dt.date(2024, 9, 1), starts_twitter=dt.date(2024, 9, 1),
                                              starts_reddit=None)  # fmt: skip
    control = Arm.objects.get(study=study, slug="control")
    rng = np.random.default_rng(3)
    shock = rng.normal(0, 2, DAYS + 21)
    expected: dict[int, dt.date] = {}
    rows = []
    for n, arm in enumerate([control, bridging] * per_arm):
        installed = FIRST + dt.timedelta(days=7 * (n % 3))
        person, _ = create_test_participant(arm=Arm.objects.get(pk=arm.pk), at=installed, is_test=False)
        first_day = installed.astimezone(dt.timezone(dt.timedelta(hours=-4))).date()
        start = first_day + dt.timedelta(days=study.baseline_days)
        if arm == bridging:
            expected[person.pk] = start
        level = rng.normal(40, 10)
        for d in range(DAYS):
            day = first_day + dt.timedelta(days=d)
            treated = arm == bridging and day >= start
            minutes = level + shock[(day - FIRST.date()).days] + rng.normal(0, 3) + (PLANTED if treated else 0)
            rows.append(DailyBehaviour(participant=person, study_id=study.pk, day=day, platform="facebook",
                                       active_minutes=max(0, round(minutes)), views=int(rng.integers(0, 50)),
                                       engagements=0, computed_at=timezone.now()))  # fmt: skip
            if d % 2 == 0:  # Reddit on every other day: the days between count 0
                rows.append(DailyBehaviour(participant=person, study_id=study.pk, day=day, platform="reddit",
                                           active_minutes=int(rng.integers(5, 30)), views=3, engagements=1,
                                           computed_at=timezone.now()))  # fmt: skip
    DailyBehaviour.objects.bulk_create(rows)
    tester, _ = create_test_participant(arm=bridging, at=FIRST)  # a test participant: never in the panel
    DailyBehaviour.objects.create(participant=tester, study_id=study.pk, day=FIRST.date(), platform="facebook",
                                  active_minutes=999, views=0, engagements=0, computed_at=timezone.now())  # fmt: skip
    return expected


def test_the_daily_panel_has_each_person_s_days_platforms_and_treatment_start_per_platform(study: Study) -> None:
    expected = hand_built_panel(study, per_arm=3)

    panel, outcomes = effects.daily_panel(study)

    assert "facebook.active_minutes" in outcomes
    assert "twitter.views" in outcomes
    assert len(panel) == 6 * DAYS  # test participant left out
    assert set(panel["participant"]) == set(Participant.objects.real().values_list("pk", flat=True))
    treated = panel[~panel["is_control"]].drop_duplicates("participant").set_index("participant")
    assert treated["start.facebook"].to_dict() == expected
    assert treated["start.twitter"].to_dict() == expected
    assert treated["start.reddit"].isna().all()  # the arm never starts on Reddit
    assert panel.loc[panel["is_control"], "start.facebook"].isna().all()
    odd_days = panel.groupby("participant").nth(1)  # the second day of each: no Reddit row, counted 0
    assert (odd_days["reddit.active_minutes"] == 0).all()
    assert (panel["twitter.active_minutes"] == 0).all()
    first = Participant.objects.real().order_by("pk").first()
    assert first is not None
    assert panel.loc[panel["participant"] == first.pk, "cohort"].iloc[0] == dt.date(2024, 9, 2)


def test_s1_recovers_the_planted_effect_on_facebook_pooled_and_per_arm_and_none_on_reddit(study: Study) -> None:
    hand_built_panel(study)

    run = effects.run_effects(study=study)

    assert run.status == EffectRun.Status.DONE, run.error
    found = {(e["spec"], e["outcome"], e["sample"]): e for e in run.estimates}
    for sample in ("pooled", "uprank_bridging"):
        facebook = found[("S1", "facebook.active_minutes", sample)]
        assert facebook["ci_low"] <= PLANTED <= facebook["ci_high"], (facebook["estimate"], facebook["std_error"])
        assert facebook["ci_low"] > 0
        assert facebook["n_participants"] == 24
    views = found[("S1", "facebook.views", "pooled")]
    assert views["ci_low"] <= 0 <= views["ci_high"]  # nothing planted on views
    # Treatment never starts on Reddit: no treated person, no estimate; nor for arms nobody is in.
    assert {"spec": "S1", "outcome": "reddit.active_minutes", "sample": "pooled"} in run.notes
    assert ("S1", "facebook.active_minutes", "add_news") not in found


def test_the_effects_page_shows_s1_pooled_while_blinded_and_per_arm_once_unblinded(study: Study) -> None:
    hand_built_panel(study, per_arm=4)
    effects.run_effects(study=study)

    blinded = login("reader", READER).get("/research/effects/", {"study": study.slug})
    shown = {(e.spec, e.outcome, e.sample) for e in blinded.context["estimates"]}
    assert ("S1", "facebook.active_minutes", "pooled") in shown
    assert {sample for _, _, sample in shown} == {"pooled"}
    assert "uprank_bridging" not in blinded.content.decode()

    pi = login("pi", PI)
    assert pi.post("/research/effects/unblind/", {"study": study.slug, "reason": "analysis"}).status_code == 302
    unblinded = pi.get("/research/effects/", {"study": study.slug})
    shown = {(e.spec, e.outcome, e.sample) for e in unblinded.context["estimates"]}
    assert ("S1", "facebook.active_minutes", "uprank_bridging") in shown
