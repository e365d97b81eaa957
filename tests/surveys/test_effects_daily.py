"""S1 on a study's real daily panel: the behaviour rollup, each participant's treatment start, the page."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from django.utils import timezone

from participants import balance
from participants.models import Arm, DailyBehaviour, Participant, Study
from participants.roles import PI, READER
from rankers.management.commands.enroll_test_participant import create_test_participant
from surveys import effects, estimators
from surveys.models import EffectRun
from tests.factories import login

pytestmark = pytest.mark.django_db

FIRST = dt.datetime(2024, 9, 2, 15, tzinfo=dt.UTC)  # the first cohort's installation (11:00 in New York)
PLANTED = 12.0  # more active minutes a day on Facebook once the bridging ranker runs there
DAYS = 42
NEW_YORK = ZoneInfo("America/New_York")
levels: dict[int, float] = {}  # each hand-built participant's usual Facebook minutes a day


def hand_built_panel(study: Study, per_arm: int = 12, *, silenced: bool = False) -> dict[int, dt.date]:
    """Control and Uprank Bridging participants in three weekly cohorts, each observed for ``DAYS`` days of
    Facebook, Reddit and X use and uninstalling the next day. Bridging starts on Facebook and X (not Reddit) on
    1 September, before anyone's baseline ends, so each treated person's start is the end of their own 14-day
    baseline. ``silenced``: once treated, the bridging participants stop using every platform (the extension
    reports nothing more for them). Returns each treated participant's expected start day."""
    study.timezone = "America/New_York"
    study.save(update_fields=["timezone"])
    bridging = Arm.objects.get(study=study, slug="uprank_bridging")
    Arm.objects.filter(pk=bridging.pk).update(starts_facebook=dt.date(2024, 9, 1), starts_twitter=dt.date(2024, 9, 1),
                                              starts_reddit=None)  # fmt: skip
    control = Arm.objects.get(study=study, slug="control")
    rng = np.random.default_rng(3)
    shock = rng.normal(0, 2, DAYS + 21)
    expected: dict[int, dt.date] = {}
    levels.clear()
    rows = []
    for n, arm in enumerate([control, bridging] * per_arm):
        installed = FIRST + dt.timedelta(days=7 * (n % 3))
        person, _ = create_test_participant(arm=Arm.objects.get(pk=arm.pk), at=installed, is_test=False)
        first_day = installed.astimezone(dt.timezone(dt.timedelta(hours=-4))).date()
        start = first_day + dt.timedelta(days=study.baseline_days)
        if arm == bridging:
            expected[person.pk] = start
        uninstalled = dt.datetime.combine(first_day + dt.timedelta(days=DAYS), dt.time(12), tzinfo=NEW_YORK)
        person.installs.update(uninstalled_at=uninstalled)
        level = rng.normal(40, 10)
        levels[person.pk] = level
        for d in range(DAYS):
            day = first_day + dt.timedelta(days=d)
            treated = arm == bridging and day >= start
            if treated and silenced:
                continue
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


def test_a_treatment_that_stops_all_use_shows_as_a_drop_to_zero_not_as_missing_days(study: Study) -> None:
    """Installed days on which the extension reported nothing are days of 0 active minutes: treated people who
    stop using Facebook altogether lose their whole usual time, which S1 must show as a negative effect."""
    expected = hand_built_panel(study, silenced=True)

    panel, _ = effects.daily_panel(study)

    silent = panel[panel["participant"].isin(list(expected)) & (panel["day"] >= panel["start.facebook"])]
    assert len(silent) == len(expected) * (DAYS - study.baseline_days)  # every treated day is in the panel ...
    assert (silent[["facebook.active_minutes", "reddit.active_minutes", "twitter.views"]] == 0).all().all()  # ... at 0
    sample = effects.platform_sample(panel, "facebook.active_minutes")
    for arm in (None, "uprank_bridging"):
        estimate = estimators.estimate_daily(sample, "facebook.active_minutes", arm=arm, baseline_days=14)
        assert estimate is not None
        usual = float(np.mean([levels[pk] for pk in expected]))  # what the treated gave up, on average
        assert estimate.ci_high < 0, estimate
        assert abs(estimate.estimate + usual) < 3, (estimate, usual)


def test_baseline_time_per_platform_is_the_mean_of_the_baseline_days_with_silent_days_at_zero(study: Study) -> None:
    """Table S18's BaselineTime<Platform>, by hand: study baseline of 3 days; rows after the baseline, and days after
    someone left, do not count; a silent installed baseline day counts 0."""
    study.baseline_days, study.timezone = 3, "UTC"
    study.save(update_fields=["baseline_days", "timezone"])
    control, bridging = (
        Arm.objects.get(study=study, slug="control"),
        Arm.objects.get(study=study, slug="uprank_bridging"),
    )
    installed = dt.datetime(2024, 9, 2, 12, tzinfo=dt.UTC)
    day = [installed.date() + dt.timedelta(days=d) for d in range(6)]
    people = {name: create_test_participant(arm=arm, at=installed, is_test=False)[0]
              for name, arm in [("a", control), ("b", control), ("c", bridging), ("d", bridging)]}  # fmt: skip
    people["d"].installs.update(uninstalled_at=installed + dt.timedelta(days=2))  # left on day 2: days 0 and 1 only
    minutes = [  # (person, day, platform, active minutes)
        ("a", 0, "facebook", 30), ("a", 1, "facebook", 60), ("a", 2, "facebook", 0), ("a", 2, "reddit", 9),
        ("a", 3, "facebook", 500),  # after the baseline
        ("b", 0, "facebook", 10), ("b", 2, "twitter", 6),  # day 1 silent
        ("c", 0, "facebook", 20), ("c", 1, "facebook", 40), ("c", 2, "facebook", 60), ("c", 4, "twitter", 99),
        ("d", 0, "facebook", 8), ("d", 1, "reddit", 4),
        ("d", 5, "facebook", 700),  # a late report after leaving (also after the baseline)
    ]  # fmt: skip
    DailyBehaviour.objects.bulk_create(
        DailyBehaviour(participant=people[who], study_id=study.pk, day=day[d], platform=platform, active_minutes=m)
        for who, d, platform, m in minutes
    )
    tester, _ = create_test_participant(arm=bridging, at=installed)  # a test participant: never in the table
    DailyBehaviour.objects.create(participant=tester, study_id=study.pk, day=day[0], platform="facebook",
                                  active_minutes=999)  # fmt: skip

    times = effects.baseline_time(study)

    by_hand = {
        "a": {"BaselineTimeFacebook": 30.0, "BaselineTimeTwitter": 0.0, "BaselineTimeReddit": 3.0},
        "b": {"BaselineTimeFacebook": 10 / 3, "BaselineTimeTwitter": 2.0, "BaselineTimeReddit": 0.0},
        "c": {"BaselineTimeFacebook": 40.0, "BaselineTimeTwitter": 0.0, "BaselineTimeReddit": 0.0},
        "d": {"BaselineTimeFacebook": 4.0, "BaselineTimeTwitter": 0.0, "BaselineTimeReddit": 2.0},
    }
    assert times == {people[who].pk: pytest.approx(values) for who, values in by_hand.items()}
    rows = {
        (r.covariate, r.group): r for r in balance.balance_rows(effects.balance_subjects(study), effects.COVARIATES)
    }
    facebook = rows[("BaselineTimeFacebook", balance.TREATMENT)]
    assert (facebook.control_n, facebook.group_n) == (2, 2)
    assert facebook.control_mean == pytest.approx((30 + 10 / 3) / 2)
    assert facebook.group_mean == pytest.approx((40 + 4) / 2)
    assert facebook.difference == pytest.approx(22 - 50 / 3)
    page = login("reader", READER).get("/research/balance/", {"study": study.slug})
    assert 'data-covariate="BaselineTimeReddit"' in page.content.decode()
