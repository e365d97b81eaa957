"""The dress rehearsal (``manage.py simulate_study``): synthetic people through the real endpoints, and the
estimators recovering what it planted.

One small rehearsal runs once for the module (24 people over two simulated weeks, their days lived by two worker
processes), then each test reads what it left in the database.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from io import StringIO
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.core.management.base import CommandError

from participants import balance, dashboard
from participants.models import (
    Assignment,
    AuditEvent,
    BehaviourEvent,
    DailyBehaviour,
    Participant,
    Payment,
    PayoutBatch,
    Study,
)
from prc_site import simulation
from rankers import serving
from rankers.models import Slate
from rankers.plugins import RankContext, RankResult, SlateItem
from surveys import effects, estimators
from surveys.forms import SurveyPageForm
from surveys.models import InFeedPrompt, Instrument, Question, Response
from tests.threads import exit_code_in_fork

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("simulation")]

SLUG = "sim-test"
PLANTED_TRUST = 0.8  # SDs of the population's trust (the GSS answer, 15 points per SD)
PEOPLE, WEEKS, SEED = 24, 2, 7
# Active minutes a day of each platform's users once treated (Reddit: nothing planted).
PLANTED_MINUTES = {"facebook": 12.0, "twitter": 20.0, "reddit": 0.0}
HOLD_MS, REDDIT_STARTS = 400, 9  # the study's hold; the day the arms go live on Reddit (the others: from the start)
REHEARSAL = [
    "--slug", SLUG, "--participants", str(PEOPLE), "--weeks", str(WEEKS), "--seed", str(SEED),
    "--arms", "control,uprank_bridging", "--baseline-days", "4", "--inclusion-days", "2", "--rank-every", "3",
    "--effect", f"trust={PLANTED_TRUST}", "--effect", f"facebook.active_minutes={PLANTED_MINUTES['facebook']}",
    "--effect", f"twitter.active_minutes={PLANTED_MINUTES['twitter']}", "--workers", "2",
    "--hold-ms", str(HOLD_MS), "--platform-start", f"reddit={REDDIT_STARTS}",
]  # fmt: skip


# A second, smaller rehearsal for the funnel: several vendors, withdrawals (in the workers), no estimates.
FUNNEL_SLUG, FUNNEL_PEOPLE, FUNNEL_VENDORS = "sim-funnel", 16, (("panel-a", 3.0), ("panel-b", 1.0))
FUNNEL_REHEARSAL = [
    "--slug", FUNNEL_SLUG, "--participants", str(FUNNEL_PEOPLE), "--weeks", "2", "--seed", "5",
    "--arms", "control,uprank_bridging", "--baseline-days", "4", "--inclusion-days", "2", "--rank-every", "7",
    "--vendor", "panel-a=3", "--vendor", "panel-b=1", "--not-eligible-share", "0.25", "--withdraw-share", "0.5",
    "--no-estimates", "--workers", "2", "--pay-out",
]  # fmt: skip


def _rehearse(django_db_blocker: Any, args: Sequence[str]) -> Iterator[str]:
    """Run a rehearsal, committed (the slate writer has its own connection); empty the database after."""
    with django_db_blocker.unblock():
        call_command("load_instruments", stdout=StringIO())
        out = StringIO()
        call_command("simulate_study", *args, stdout=out)
        try:
            yield out.getvalue()
        finally:
            call_command("flush", interactive=False, verbosity=0)


@pytest.fixture(scope="module")
def rehearsed(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    yield from _rehearse(django_db_blocker, REHEARSAL)


@pytest.fixture(scope="module")
def funnel_rehearsed(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    yield from _rehearse(django_db_blocker, FUNNEL_REHEARSAL)


def funnel_plan() -> simulation.Plan:
    """The funnel rehearsal's plan, as the command builds it (the same seed, the same people)."""
    return simulation.Plan(
        slug=FUNNEL_SLUG,
        participants=FUNNEL_PEOPLE,
        weeks=2,
        seed=5,
        vendors=FUNNEL_VENDORS,
        not_eligible_share=0.25,
        withdraw_share=0.5,
    )


@pytest.fixture
def study(rehearsed: str, db: None) -> Study:
    return Study.objects.get(slug=SLUG)


class _Reversing:
    """A sync ranker with nothing to score: it runs in the ranking thread pool."""

    name: ClassVar[str] = "reversing"
    attributes: ClassVar[tuple[str, ...]] = ()

    def rank(self, items: Sequence[SlateItem], context: RankContext) -> RankResult:
        return RankResult(ranked_ids=[item.id for item in reversed(items)])


async def _sync_code_and_a_ranker() -> list[str]:
    """What a rehearsal worker's /rank does off the event loop: thread-sensitive sync code (asgiref's one thread)
    and a sync ranker (the ranking pool)."""
    pid = await sync_to_async(os.getpid)()
    items = [SlateItem(id=f"p{n}", text=f"post {n}") for n in range(3)]
    context = RankContext(platform="reddit", content_type="post", user_id=str(pid), now=dt.datetime.now(dt.UTC))
    ranked = await serving.run_ranker(_Reversing(), items, context)
    return ranked.result.ranked_ids


def test_a_forked_worker_runs_sync_code_and_rankers_after_the_parent_used_their_threads() -> None:
    """A forked process has none of its parent's threads: a pool it inherited with its threads already started
    would queue the work and never run it (the rehearsal's workers waited forever in /rank). First in the module, so
    that the module's rehearsal forks its workers from a process whose pools have threads, as in a full suite."""
    assert asyncio.run(_sync_code_and_a_ranker()) == ["p2", "p1", "p0"]  # the pools' threads now exist here
    code = exit_code_in_fork(lambda: asyncio.run(_sync_code_and_a_ranker()) == ["p2", "p1", "p0"], timeout_s=20)
    assert code is not None, "the forked child still waits for its thread pools after 20 s"
    assert code == 0


def test_the_rehearsal_goes_through_every_endpoint_into_a_study_marked_simulated(study: Study, rehearsed: str) -> None:
    assert study.simulated
    assert study.name.startswith("SIMULATED")
    assert study.rank_hold_ms == HOLD_MS
    people = Participant.objects.filter(study=study)
    assert people.count() == PEOPLE
    assert not people.filter(is_test=True).exists()  # the study's own data: counted by its pages and estimates
    enrolled = people.filter(enrolled_at__isnull=False)
    assert enrolled.count() >= 18
    assert people.filter(stage=Participant.Stage.SCREENED_OUT).exists()
    assert enrolled.filter(included_at__isnull=False).count() >= 18
    # Every slate answered and every event accepted is stored.
    slates = Slate.objects.filter(study_id=study.pk)
    assert slates.count() == tallied(rehearsed, "slates") > 50
    assert set(slates.values_list("platform", flat=True)) == {"facebook", "reddit", "twitter"}
    assert BehaviourEvent.objects.filter(study_id=study.pk).count() == tallied(rehearsed, "events") > 5000
    rollup = DailyBehaviour.objects.filter(study_id=study.pk)
    assert rollup.count() > 150
    assert set(rollup.values_list("platform", flat=True)) == {"facebook", "reddit", "twitter"}
    assert Response.objects.filter(wave__study=study, completed_at__isnull=False).count() > 40
    assert InFeedPrompt.objects.filter(participant__study=study, answered_at__isnull=False).exists()
    assert Payment.objects.filter(participant__study=study, kind=Payment.Kind.SURVEY).count() > 15
    # Every stored time is simulated: nothing after the last simulated day.
    last_day = max(p.enrolled_at for p in enrolled if p.enrolled_at)
    assert last_day < dt.datetime.now(dt.UTC) - dt.timedelta(days=7)


def test_every_slate_records_the_ramped_hold(study: Study) -> None:
    slates = list(Slate.objects.filter(study_id=study.pk))
    enrolled = {p.public_id: p.enrolled_at for p in Participant.objects.filter(study=study, enrolled_at__isnull=False)}
    for slate in slates:
        installed = enrolled[slate.participant_id]
        assert installed is not None
        assert slate.hold_ms is not None
        days = (slate.served_at - installed).total_seconds() / 86400
        # The study's lag ramp (serving.hold_ms): from zero at installation to the full hold after ramp_days.
        assert slate.hold_ms == pytest.approx(HOLD_MS * min(1.0, days / study.ramp_days), abs=0.5)
        assert slate.hold_ms - 0.01 <= slate.served_ms < slate.hold_ms + 2000  # the hold, or slower ranking
    holds = [s.hold_ms or 0.0 for s in slates]
    assert HOLD_MS in holds
    assert min(holds) < HOLD_MS / 2


def test_the_rehearsals_hold_clock_moves_on_at_once_instead_of_waiting() -> None:
    hold = simulation.SkippedHold()
    before, started = hold.monotonic(), time.monotonic()

    asyncio.run(hold.sleep_until(before + 100))

    assert time.monotonic() - started < 5  # a real wait would take 100 s
    assert hold.monotonic() - before >= 100
    asyncio.run(hold.sleep_until(before + 50))  # a deadline already past moves nothing
    assert hold.monotonic() - before < 105


def test_a_treatment_arm_treats_every_slate_from_stored_scores_once_live_on_the_platform(study: Study) -> None:
    """The pool's posts are scored before the first slate (``prescore``) and the rehearsal's standing loop sheds
    nothing, so every treated slate is ranked, not fallen back; on Reddit the arm goes live on its own day."""
    treated = Slate.objects.filter(study_id=study.pk, arm="uprank_bridging")
    assigned = treated.filter(phase="assigned")
    assert assigned.count() > 10
    assert not assigned.exclude(fallback_reason="").exists()
    assert not assigned.filter(intervention_on=False).exists()
    assert assigned.filter(nrc__gt=0).exists()  # the bridging scores tell the posts apart
    reddit_start = simulation.arm_start_dates(plan_of(study))["reddit"]
    waiting = treated.filter(phase=serving.NOT_STARTED)
    assert waiting.exists()
    assert set(waiting.values_list("platform", flat=True)) == {"reddit"}
    assert all(s.served_at.date() < reddit_start for s in waiting)
    assert all(s.served_at.date() >= reddit_start for s in assigned.filter(platform="reddit"))


def plan_of(study: Study) -> simulation.Plan:
    """The module rehearsal's plan, its last day fixed as the rehearsal fixed it (the day before it ran)."""
    facebook = study.arms.get(slug="control").starts_facebook  # the day before the first simulated day
    assert facebook is not None
    first = facebook + dt.timedelta(days=1)
    plan = simulation.Plan(
        slug=SLUG, participants=PEOPLE, weeks=WEEKS, seed=SEED, platform_starts={"reddit": REDDIT_STARTS}
    )
    return dataclasses.replace(plan, end=first + dt.timedelta(days=plan.days - 1))


def test_a_treated_person_gets_the_planted_minutes_on_a_platform_only_once_the_arm_is_live_there() -> None:
    plan = simulation.Plan(
        slug="x", participants=1, weeks=3, baseline_days=4, platform_starts={"twitter": 10}, end=dt.date(2026, 3, 21)
    )
    person = simulation.population(plan)[0]
    installed = simulation.local_time(plan, 0, 8)
    member = simulation.Enrolled(person, "t", "p", 0, installed, "uprank_bridging", False, "k")
    control = dataclasses.replace(member, arm="control", control=True)

    def treated(who: simulation.Enrolled, platform: str, day: int) -> bool:
        return who.treated_on(plan, platform, simulation.local_time(plan, day, 9))

    assert [treated(member, "facebook", day) for day in (3, 4)] == [False, True]  # the baseline's four days
    assert [treated(member, "twitter", day) for day in (4, 9, 10)] == [False, False, True]  # live from day 10
    assert not any(treated(control, p, 15) for p in simulation.PLATFORMS)


def test_randomization_follows_the_plans_arrival_order_whatever_the_workers_do(study: Study) -> None:
    """The workers live people's days side by side, but signups stay in one process in the plan's order: within
    each stratum, positions (hence arms) follow the arrival order, as they would with one process."""
    plan = simulation.Plan(slug=SLUG, participants=PEOPLE, weeks=WEEKS, seed=SEED)
    people = {person.vendor_id: person for person in simulation.population(plan)}
    by_stratum: dict[str, list[tuple[tuple[int, int, int], int]]] = {}
    for vendor_pid, stratum, position in Assignment.objects.filter(participant__study=study).values_list(
        "participant__vendor_pid", "stratum", "position"
    ):
        by_stratum.setdefault(stratum, []).append((simulation.arrival_order(people[vendor_pid]), position))
    assert sum(len(v) for v in by_stratum.values()) >= 18
    for assigned in by_stratum.values():
        assert [position for _, position in sorted(assigned)] == list(range(len(assigned)))


def tallied(output: str, name: str) -> int:
    return int(next(line for line in output.splitlines() if line.strip().startswith(f"{name}:")).split(":")[1])


def test_s3_recovers_the_planted_survey_effect_within_its_confidence_interval(study: Study) -> None:
    """The index is standardized against this sample's control baseline, so the planted effect reads in that
    sample's SD: the population SD (15 points of the GSS answer) over the sample's."""
    baseline = Response.objects.filter(
        wave__study=study,
        wave__kind="baseline",
        completed_at__isnull=False,
        participant__assignment__arm__is_control=True,
    )
    sample_sd = statistics.stdev(r.answers["gss_trust"] for r in baseline) / 15
    expected = PLANTED_TRUST / sample_sd
    panel = effects.survey_panel(study)
    for arm in (None, "uprank_bridging"):
        estimate = estimators.estimate_survey(panel, "trust", arm=arm)
        assert estimate is not None
        assert estimate.ci_low <= expected <= estimate.ci_high, (expected, estimate)
        assert estimate.p_value < 0.05, estimate


def test_outcomes_with_nothing_planted_are_not_significantly_different_from_zero(study: Study) -> None:
    panel = effects.survey_panel(study)
    for outcome in ("wellbeing", "affective_polarization"):
        estimate = estimators.estimate_survey(panel, outcome)
        assert estimate is not None
        assert estimate.ci_low <= 0 <= estimate.ci_high, estimate
        assert estimate.p_value > 0.05, estimate


def users_of(study: Study, platform: str) -> set[int]:
    """The participants who use ``platform``, from the rehearsal's own population (the same seed, the same people)."""
    plan = simulation.Plan(slug=SLUG, participants=PEOPLE, weeks=WEEKS, seed=SEED)
    uses = {person.vendor_id for person in simulation.population(plan) if platform in person.platforms}
    return {pk for pk, pid in Participant.objects.filter(study=study).values_list("pk", "vendor_pid") if pid in uses}


def test_s1_on_the_rolled_up_daily_panel_recovers_the_planted_active_minutes_per_platform(study: Study) -> None:
    """Minutes are planted per user of a platform; S1 over everyone (non-users at 0, as in the paper) reads the
    planted minutes times the treated group's share of the platform's users."""
    panel, outcomes = effects.daily_panel(study)
    assert {f"{p}.active_minutes" for p in PLANTED_MINUTES} <= set(outcomes)
    treated = set(panel.loc[~panel["is_control"], "participant"])
    for platform, planted in PLANTED_MINUTES.items():
        expected = planted * len(treated & users_of(study, platform)) / len(treated)
        sample = effects.platform_sample(panel, f"{platform}.active_minutes")
        for arm in (None, "uprank_bridging"):
            estimate = estimators.estimate_daily(
                sample, f"{platform}.active_minutes", arm=arm, baseline_days=study.baseline_days
            )
            assert estimate is not None
            assert estimate.ci_low <= expected <= estimate.ci_high, (platform, expected, estimate)
            assert (estimate.p_value < 0.05) == (planted != 0), (platform, estimate)


def test_the_daily_panel_follows_each_participant_from_installation_until_they_leave(study: Study) -> None:
    """Every installed day is in the panel, the silent ones too (at 0 on every platform)."""
    panel, _ = effects.daily_panel(study)
    tz = ZoneInfo(study.timezone)
    last_day = panel["day"].max()
    for person in Participant.objects.filter(study=study, included_at__isnull=False):
        days = panel.loc[panel["participant"] == person.pk, "day"]
        install = person.installs.get()
        leaves = install.uninstalled_at.astimezone(tz).date() if install.uninstalled_at else None
        assert person.enrolled_at is not None
        assert days.min() == person.enrolled_at.astimezone(tz).date()
        assert days.max() == (leaves - dt.timedelta(days=1) if leaves else last_day)
        assert len(days) == days.nunique() == (days.max() - days.min()).days + 1
    platforms = [f"{p}.active_minutes" for p in PLANTED_MINUTES]
    for platform in PLANTED_MINUTES:  # a platform someone does not use is 0 on each of their days
        non_users = panel[~panel["participant"].isin(users_of(study, platform))]
        assert not non_users.empty
        assert (non_users[f"{platform}.active_minutes"] == 0).all()
    assert (panel[platforms].sum(axis=1) > 0).mean() > 0.9


def test_the_command_prints_each_estimate_beside_what_was_planted(rehearsed: str) -> None:
    line = next(row for row in rehearsed.splitlines() if "S3 trust " in row and "pooled" in row)
    assert f"planted +{PLANTED_TRUST:.3f}" in line
    assert "planted +0.000" in next(row for row in rehearsed.splitlines() if "S3 wellbeing " in row)
    assert "planted +0.000" in next(row for row in rehearsed.splitlines() if "S3 empathy " in row)  # never planted
    # trust_index sums the trust item and sd_out: nothing is planted on it, but it moves with trust (two independent
    # items of one SD each, one moved by the planted SDs: the sum moves by them over the square root of 2).
    line = next(row for row in rehearsed.splitlines() if "S3 trust_index " in row and "pooled" in row)
    assert "not planted; about" in line
    implied = float(line.split("not planted; about ")[1].split()[0])
    assert implied == pytest.approx(PLANTED_TRUST / np.sqrt(2), abs=0.05)
    line = next(row for row in rehearsed.splitlines() if "S1 facebook.active_minutes " in row and "pooled" in row)
    assert f"planted +{PLANTED_MINUTES['facebook']:.3f} a user-day" in line
    line = next(row for row in rehearsed.splitlines() if "S1 twitter.active_minutes " in row and "bridging" in row)
    assert f"planted +{PLANTED_MINUTES['twitter']:.3f} a user-day" in line
    assert "not planted" in next(row for row in rehearsed.splitlines() if "S1 facebook.views " in row)


def test_a_plan_draws_the_same_people_from_the_same_seed_and_others_from_another() -> None:
    plan = simulation.Plan(slug="x", participants=50, weeks=3, seed=3)
    assert simulation.population(plan) == simulation.population(plan)
    other = simulation.population(simulation.Plan(slug="x", participants=50, weeks=3, seed=4))
    assert [p.activity for p in other] != [p.activity for p in simulation.population(plan)]
    assert all(p.platforms and set(p.activity) == set(p.platforms) for p in other)
    assert {len(p.platforms) for p in other} == {1, 2, 3}


def test_each_person_arrives_through_a_vendor_drawn_by_its_share_without_changing_anything_else() -> None:
    """Vendors come from a draw of their own: the same seed gives the same people whatever the vendors are."""
    single = simulation.population(simulation.Plan(slug="x", participants=2000, weeks=3, seed=2))
    several = simulation.population(
        simulation.Plan(slug="x", participants=2000, weeks=3, seed=2, vendors=(("a", 6.0), ("b", 3.0), ("c", 1.0)))
    )
    assert {p.vendor for p in single} == {simulation.DEFAULT_VENDOR}
    assert [dataclasses.replace(p, vendor=simulation.DEFAULT_VENDOR) for p in several] == single
    for vendor, share in (("a", 0.6), ("b", 0.3), ("c", 0.1)):
        assert sum(p.vendor == vendor for p in several) / len(several) == pytest.approx(share, abs=0.03)


@pytest.mark.parametrize(
    ("name", "value", "who"),
    [
        ("not_eligible_share", 0.4, lambda p: not p.eligible),
        ("abandon_share", 0.5, lambda p: p.eligible and not p.consents),
        ("no_install_share", 0.3, lambda p: p.consents and not p.installs),
        ("uninstall_share", 0.5, lambda p: p.uninstall_day is not None),
        ("withdraw_share", 0.3, lambda p: p.withdraw_day is not None),
    ],
)
def test_each_funnel_share_of_a_plan_sets_the_share_of_people_who_stop_there(
    name: str, value: float, who: Callable[[simulation.Person], bool]
) -> None:
    """Each chance applies to those who reached that step (uninstalling and withdrawing: to everyone, on a later day;
    only those installed by then act on it)."""
    changes: dict[str, Any] = {name: value}
    plan = simulation.Plan(slug="x", participants=3000, weeks=8, seed=4, **changes)
    default = getattr(simulation.Plan(slug="x", participants=1, weeks=1), name)
    reached = {
        "not_eligible_share": lambda p: True,
        "abandon_share": lambda p: p.eligible,
        "no_install_share": lambda p: p.consents,
        "uninstall_share": lambda p: True,
        "withdraw_share": lambda p: True,
    }[name]
    people = [p for p in simulation.population(plan) if reached(p)]
    assert sum(map(who, people)) / len(people) == pytest.approx(value, abs=0.03)
    baseline = [p for p in simulation.population(dataclasses.replace(plan, **{name: default})) if reached(p)]
    assert sum(map(who, baseline)) / len(baseline) == pytest.approx(default, abs=0.03)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"not_eligible_share": 1.5}, "not_eligible_share is a chance between 0 and 1"),
        ({"follow_up_response": -0.1}, "follow_up_response is a chance"),
        ({"vendors": ()}, "at least one vendor"),
        ({"vendors": (("a", 1.0), ("a", 2.0))}, "named twice"),
        ({"vendors": (("A b", 1.0),)}, "not a vendor slug"),
        ({"vendors": (("a", 0.0),)}, "above 0"),
        ({"hold_ms": -1}, "hold_ms is a time"),
        ({"platform_starts": {"myspace": 1}}, "not a platform"),
        ({"platform_starts": {"reddit": 21}}, "outside the 21 days"),
    ],
)
def test_a_plan_with_a_share_out_of_range_or_a_bad_vendor_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        simulation.Plan(slug="x", participants=10, weeks=3, **changes)


def test_the_funnel_rehearsal_brings_each_person_through_their_vendors_link(funnel_rehearsed: str, db: None) -> None:
    """Each vendor is a recruitment source of the study, and each participant came through the one the plan drew."""
    study = Study.objects.get(slug=FUNNEL_SLUG)
    assert set(study.sources.values_list("slug", flat=True)) == {"panel-a", "panel-b"}
    people = {p.vendor_id: p for p in simulation.population(funnel_plan())}
    arrived = dict(Participant.objects.filter(study=study).values_list("vendor_pid", "source__slug"))
    assert arrived == {pid: person.vendor for pid, person in people.items()}
    assert set(arrived.values()) == {"panel-a", "panel-b"}
    out = Participant.objects.filter(study=study, stage=Participant.Stage.SCREENED_OUT)
    screened_out = set(out.values_list("vendor_pid", flat=True))
    assert screened_out == {pid for pid, person in people.items() if not person.eligible}
    assert screened_out


def test_withdrawals_are_drawn_apart_from_everything_else_and_after_arrival() -> None:
    plan = simulation.Plan(slug="x", participants=500, weeks=3, seed=6)
    leaving = simulation.population(dataclasses.replace(plan, withdraw_share=0.5))
    assert [dataclasses.replace(p, withdraw_day=None) for p in leaving] == simulation.population(plan)
    days = [p.withdraw_day - p.arrival_day for p in leaving if p.withdraw_day is not None]
    assert days
    assert min(days) >= 1
    assert max(p.withdraw_day or 0 for p in leaving) < plan.days


def test_the_funnel_rehearsal_withdraws_people_on_their_status_page_and_the_attrition_pages_count_them(
    funnel_rehearsed: str, db: None
) -> None:
    """Those the plan has withdraw (unless they uninstalled first) are withdrawn, on the planned day, by themselves
    (audited), with nothing collected after; the CONSORT rows and the retention stays count them."""
    study = Study.objects.get(slug=FUNNEL_SLUG)
    plan = funnel_plan()
    people = {p.vendor_id: p for p in simulation.population(plan)}
    planned = {
        pid
        for pid, p in people.items()
        if p.installs and p.withdraw_day is not None and (p.uninstall_day is None or p.withdraw_day < p.uninstall_day)
    }
    withdrawn = list(Participant.objects.filter(study=study, withdrawn_at__isnull=False))
    assert {p.vendor_pid for p in withdrawn} == planned
    assert planned
    assert tallied(funnel_rehearsed, "withdrawals") == len(planned)
    tz = ZoneInfo(study.timezone)
    stays = balance.stays_by_participant(study)
    for participant in withdrawn:
        person = people[participant.vendor_pid]
        assert participant.enrolled_at is not None
        assert participant.withdrawn_at is not None
        on = participant.enrolled_at.astimezone(tz).date() + dt.timedelta(
            days=(person.withdraw_day or 0) - person.arrival_day
        )
        assert participant.withdrawn_at.astimezone(tz).date() == on
        assert participant.stage == Participant.Stage.WITHDRAWN
        audit = AuditEvent.objects.get(action="participant.withdrawn", object_id=participant.public_id)
        assert audit.actor_label == f"participant {participant.public_id}"
        after = BehaviourEvent.objects.filter(participant_id=participant.pk, occurred_at__gte=participant.withdrawn_at)
        assert not after.exists()
        if participant.pk in stays:
            assert stays[participant.pk].left_on == on
    assert any(p.pk in stays for p in withdrawn)
    consort = dashboard.consort_rows(study, dt.date(2000, 1, 1), dt.date.today() + dt.timedelta(days=1))
    assert sum(row.withdrawn for row in consort) == len(planned)


def test_the_funnel_rehearsal_pays_every_credit_through_the_admin_and_the_payout_files(
    funnel_rehearsed: str, db: None
) -> None:
    """On the last simulated day every owed survey credit is approved, exported in one gift-card batch and paid from
    the provider's results, each move audited with the payments researcher as the actor."""
    study = Study.objects.get(slug=FUNNEL_SLUG)
    payments = list(Payment.objects.filter(participant__study=study))
    assert payments
    assert {p.status for p in payments} == {Payment.Status.PAID}
    assert tallied(funnel_rehearsed, "paid") == len(payments)
    batch = PayoutBatch.objects.get(study=study)
    assert {p.batch_id for p in payments} == {batch.pk}
    tz = ZoneInfo(study.timezone)
    last_day = max(p.created_at for p in payments).astimezone(tz).date()
    for payment in payments:
        assert payment.approved_at is not None
        assert payment.paid_at is not None
        assert payment.approved_at.astimezone(tz).date() == payment.paid_at.astimezone(tz).date() >= last_day
    actor = f"simulated-payments-{FUNNEL_SLUG}"
    for action in ("payment.approved", "payment.paid"):
        moved = AuditEvent.objects.filter(action=action, actor_label=actor).values_list("object_id", flat=True)
        assert sorted(moved) == sorted(str(p.pk) for p in payments), action


def test_planted_minutes_add_to_a_users_day_on_the_platform_and_a_non_user_stays_at_zero() -> None:
    plan = simulation.Plan(slug="x", participants=20, weeks=3, seed=1)
    person = next(p for p in simulation.population(plan) if len(p.platforms) == 2)
    used, unused = person.platforms[0], next(p for p in simulation.PLATFORMS if p not in person.platforms)
    untreated = simulation.active_minutes(plan, person, used, 10, 0.0)
    assert simulation.active_minutes(plan, person, used, 10, 20.0) == untreated + 20
    assert simulation.active_minutes(plan, person, unused, 10, 20.0) == 0


def test_a_platforms_own_planted_minutes_replace_the_ones_planted_on_every_platform() -> None:
    planted = {"active_minutes": {"a": -5.0, "b": -5.0}, "twitter.active_minutes": {"a": 7.0}}
    assert simulation.planted_minutes(planted, "twitter", "a") == 7.0
    assert simulation.planted_minutes(planted, "twitter", "b") == -5.0
    assert simulation.planted_minutes(planted, "reddit", "a") == -5.0
    assert simulation.planted_minutes({}, "reddit", "a") == 0.0


def test_survey_answers_follow_the_latent_level_of_each_planted_outcome() -> None:
    """Thermometers and friend comfort move apart with polarization; the GSS answer falls as trust rises."""
    questions = [
        Question(key="ft_in", kind="thermometer", min_value=0, max_value=100),
        Question(key="ft_out", kind="thermometer", min_value=0, max_value=100),
        Question(key="gss_trust", kind="slider", min_value=0, max_value=100),
        Question(key="sd_in", kind="likert", options=[{"value": v, "label": str(v)} for v in range(1, 8)]),
    ]
    rng = np.random.default_rng(0)
    calm = simulation.survey_form(questions, {"affective_polarization": 0, "wellbeing": 0, "trust": 0}, rng, "x")
    hot = simulation.survey_form(questions, {"affective_polarization": 1, "wellbeing": 0, "trust": 1}, rng, "x")
    assert (calm["ft_in"], calm["ft_out"], calm["gss_trust"], calm["sd_in"]) == (50, 50, 50, 4)
    # A quarter of the 7-point scale per SD: 4 + 1.5 steps, rounded to even.
    assert (hot["ft_in"], hot["ft_out"], hot["gss_trust"], hot["sd_in"]) == (65, 35, 35, 5)


def test_an_index_sharing_an_item_with_a_planted_outcome_moves_by_what_its_items_imply() -> None:
    """Affective polarization moves the four items of its index; trust_index sums the trust item and sd_out (outparty
    friends, one of the four), two independent items of one SD each: one moved by -effect, so the sum by
    -effect / sqrt(2) of its SD. Outcomes that share nothing with it do not move at all."""
    seven = [{"value": v, "label": str(v)} for v in range(1, 8)]
    questions = [
        Question(key="ft_in", kind="thermometer", min_value=0, max_value=100, page=1),
        Question(key="ft_out", kind="thermometer", min_value=0, max_value=100, page=1),
        Question(key="sd_in", kind="likert", options=seven, page=2),
        Question(key="sd_out", kind="likert", options=seven, page=2),
        Question(key="gss_trust", kind="slider", min_value=0, max_value=100, page=3),
    ]
    implied = simulation.implied_index_effects(questions, {"affective_polarization": -0.5})
    assert implied["affective_polarization"] == pytest.approx(-0.5, abs=0.05)
    assert implied["trust_index"] == pytest.approx(0.5 / np.sqrt(2), abs=0.05)
    assert implied["trust"] == 0
    assert simulation.implied_index_effects(questions, {}) == dict.fromkeys(implied, 0.0)


@pytest.mark.django_db
def test_the_simulated_answers_fill_every_page_of_every_instrument() -> None:
    """Whatever questions an instrument has (new ones included), each page's own form accepts what a simulated
    person posts, so a rehearsal never stalls on a page."""
    call_command("load_instruments", stdout=StringIO())
    levels = dict.fromkeys(simulation.SURVEY_OUTCOMES, 0.5)
    instruments = list(Instrument.objects.prefetch_related("questions"))
    assert {i.slug for i in instruments} >= {"prc-baseline", "prc-midline", "prc-endline"}
    for instrument in instruments:
        questions = list(instrument.questions.all())
        data = simulation.survey_form(questions, levels, np.random.default_rng(0), "democrat")
        for page in sorted({q.page for q in questions}):
            on_page = [q for q in questions if q.page == page]
            form = SurveyPageForm(data, questions=on_page, words={}, initial_answers={})
            assert form.is_valid(), (instrument.slug, page, form.errors)


def test_a_question_of_a_kind_the_rehearsal_cannot_answer_stops_it() -> None:
    with pytest.raises(simulation.SimulationError, match="ranking"):
        simulation.survey_form(
            [Question(key="q", kind="ranking")],
            dict.fromkeys(simulation.SURVEY_OUTCOMES, 0),
            np.random.default_rng(0),
            "x",
        )


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("affective_polarization=-0.2", ("affective_polarization", {"a": -0.2, "b": -0.2})),
        ("active_minutes:b=10", ("active_minutes", {"b": 10.0})),
        ("facebook.active_minutes=-3", ("facebook.active_minutes", {"a": -3.0, "b": -3.0})),
    ],
)
def test_an_effect_names_an_outcome_and_optionally_one_arm(text: str, parsed: tuple[str, dict[str, float]]) -> None:
    assert simulation.parse_effect(text, ["control", "a", "b"]) == parsed


@pytest.mark.parametrize(
    "text", ["happiness=1", "youtube.active_minutes=1", "trust:control=1", "trust:zz=1", "trust=lots", "trust"]
)
def test_an_effect_on_an_unknown_outcome_or_arm_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        simulation.parse_effect(text, ["control", "a"])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--arms", "control,nonsense"], "Unknown arms"),
        (["--arms", "control"], "treatment arm"),
        (["--weeks", "1"], "too few"),
        (["--effect", "trust:add_news=1", "--arms", "control,uprank_bridging"], "not a treatment arm"),
        (["--vendor", "rep-data"], "SLUG=SHARE"),
        (["--vendor", "rep-data=lots"], "SLUG=SHARE"),
        (["--vendor", "Rep Data=1"], "not a vendor slug"),
        (["--vendor", "rep-data=0"], "above 0"),
        (["--vendor", "a=1", "--vendor", "a=2"], "named twice"),
        (["--abandon-share", "1.2"], "abandon_share is a chance"),
        (["--platform-start", "reddit"], "PLATFORM=DAY"),
        (["--platform-start", "reddit=-1"], "PLATFORM=DAY"),
        (["--platform-start", "myspace=2"], "not a platform"),
    ],
)
def test_the_command_refuses_a_plan_it_cannot_run(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("simulate_study", "--slug", "sim-refused", *args, stdout=StringIO())
    assert not Study.objects.filter(slug="sim-refused").exists()


@pytest.mark.django_db
def test_the_command_is_refused_in_production(settings: Any) -> None:
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="production"):
        call_command("simulate_study", "--slug", "sim-prod", stdout=StringIO())
