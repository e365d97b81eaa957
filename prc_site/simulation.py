"""A dress rehearsal of a study: synthetic participants through the real endpoints over simulated weeks.

``simulate_study`` creates a study marked ``simulated`` (its own slug, a name that says so; refused in
production) and walks synthetic people through the same HTTP routes real ones use, with Django's
test client against the real URL configuration: vendor link, screener, consent, the install page,
extension registration, daily heartbeats, ``/rank`` slates, behaviour event batches, in-feed questions,
survey pages, withdrawals (the status page's form) and uninstalls. Payments follow from the completed surveys
(each wave's payment); with ``Plan.pay_out`` a payments researcher approves and pays them through the admin and the
payments dashboard on the last day. The platform's periodic jobs (the survey schedule, the behaviour and slate
rollups) run at simulated times through their management commands, as beat would run them.

Steps:

1. ``population``: each person's arrival day, the platforms they use (each with its usual active minutes a
   day), party and latent outcome levels, drawn from the seed alone (pure).
2. The clock: ``django.utils.timezone.now`` answers the simulated time while the rehearsal runs, so every
   stored time (consent, installation, inclusion, invitations, events) follows the simulated weeks. The
   simulated weeks end yesterday, so that times the database stamps itself (``now()``) never precede them.
   The hold's clock (``serving.HOLD_CLOCK``) is a ``SkippedHold``: slates record the study's hold (``Plan.hold_ms``)
   without anyone waiting for it. Before the first slate the post pool is scored (``prescore``), since no scorer
   worker runs.
3. Each simulated day: the survey schedule at 06:00 local time, the day's arrivals sign up, then everyone
   installed acts once (heartbeat, a slate, the day's behaviour events, the in-feed question, open surveys).
   With ``workers`` > 1, forked processes live the days of those enrolled (each person always in the same one,
   by index), each with its own database connection and its own copy of the clock, while this process runs the
   schedule and the signups, one after the other in the plan's order (so randomization, which hands out
   positions in signup order, gives everyone the same arm whatever the number of workers).
4. The planted effects (``Plan.effects``): once ``/rank`` switches a treated person's arm on for a platform (their
   baseline days over and the arm live there, ``Plan.platform_starts``), their active minutes there change by the
   planted minutes (``active_minutes`` on every platform, ``<platform>.active_minutes`` on one; non-users stay at 0,
   so S1 over everyone reads the planted minutes times the share of the platform's users), and their survey
   answers move so that the outcome's index rises by the planted control standard deviations. The world
   reads each person's assignment to know who is treated; nothing the person sends names an arm.
5. At the end, the behaviour and slate rollups are computed for the simulated days.

Every random draw comes from the seed: the same plan gives the same people, the same assignments and the
same answers, with one worker or several (only ids the platform generates differ).
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import datetime as dt
import hashlib
import math
import multiprocessing
import os
import re
import signal
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import StringIO
from multiprocessing.connection import Connection
from typing import Any, Protocol
from unittest import mock
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import numpy as np
import orjson
from django.apps import apps
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connections, transaction
from django.test import AsyncClient, Client
from django.test.utils import override_settings
from django.utils import timezone

from participants import treatment
from participants.copy import DEFAULT_COPY
from participants.models import (
    Arm,
    Assignment,
    ConsentDocument,
    PageCopy,
    Payment,
    PayoutMethod,
    RecruitmentSource,
    Study,
)
from participants.paper import PAPER_ARMS
from participants.roles import OPS, create_roles
from prc_site.lib import asyncdb
from rankers import serving, slatelog
from surveys import indexes
from surveys import services as survey_services
from surveys.forms import SurveyPageForm
from surveys.models import Instrument, Question, Wave

SURVEY_OUTCOMES = ("affective_polarization", "wellbeing", "trust")
PLATFORMS = ("reddit", "twitter", "facebook")
# Active minutes a day of a platform's users: on every platform they use, or on one.
DAILY_OUTCOMES = ("active_minutes", *(f"{p}.active_minutes" for p in PLATFORMS))
PLATFORM_USE = 0.6  # the chance a person uses each platform (everyone uses at least one)
SLATE_ITEMS = 10
POSTS_PER_PLATFORM = 200
PERSON_SHARE = 0.8  # of a survey outcome's variance: the person's stable level (a test-retest correlation of 0.8)
SIMULATED_PREFIX = "SIMULATED"
DEFAULT_VENDOR = "sim-panel"
# The funnel's shares (Plan fields of these names, options of the command): each a chance between 0 and 1.
FUNNEL_SHARES = {
    "not_eligible_share": "The chance an arrival is screened out (a tablet)",
    "abandon_share": "The chance someone screened in never consents",
    "no_install_share": "The chance someone who consents never installs the extension",
    "uninstall_share": "The chance an installed person uninstalls on a random later day",
    "withdraw_share": "The chance an installed person withdraws on their status page on a random later day",
    "follow_up_response": "The chance someone answers a follow-up survey they are invited to",
}
SLUG = re.compile(r"[a-z0-9][a-z0-9_-]*")


class SimulationError(Exception):
    """An endpoint answered what a real participant would not have been answered: a bug to look at."""


# --- the plan ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    slug: str
    participants: int
    weeks: int
    seed: int = 0
    effects: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # outcome -> arm -> effect
    arms: tuple[str, ...] = tuple(a.slug for a in PAPER_ARMS)
    baseline_days: int = 14
    inclusion_days: int = 7
    rank_every: int = 1  # a slate every this many days (each person on their own phase)
    end: dt.date | None = None  # the last simulated day; default yesterday in the study's time zone
    timezone: str = "America/New_York"
    # Where arrivals come from: (vendor slug, share of arrivals), the shares relative to each other.
    vendors: tuple[tuple[str, float], ...] = ((DEFAULT_VENDOR, 1.0),)
    # The funnel (chances): screened out (a tablet); screened in, never consent; consent, never install.
    not_eligible_share: float = 0.10
    abandon_share: float = 0.05
    no_install_share: float = 0.03
    # Leaving, on a random day after arriving: uninstall the extension; withdraw on the status page.
    uninstall_share: float = 0.05
    withdraw_share: float = 0.0
    follow_up_response: float = 0.9  # answer a follow-up survey they are invited to
    pay_out: bool = False  # on the last day, approve and pay every owed credit (else they stay owed)
    name: str = ""  # the study's name; by default one that says SIMULATED, with the plan's size and seed
    # The study's hold (``Study.rank_hold_ms``), ramped up over the baseline days as the study's ramp does; every
    # slate records it, and the rehearsal does not wait for it (``SkippedHold``).
    hold_ms: int = 0
    # The day (counted from the first simulated day) the treatment arms go live on a platform, staggered as the
    # paper's went live one platform at a time; a platform not named is live from the start.
    platform_starts: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in FUNNEL_SHARES:
            if not 0 <= (value := getattr(self, name)) <= 1:
                raise ValueError(f"{name} is a chance between 0 and 1, not {value}")
        slugs = [slug for slug, _ in self.vendors]
        if not slugs:
            raise ValueError("a plan needs at least one vendor")
        if len(set(slugs)) != len(slugs):
            raise ValueError(f"a vendor is named twice: {', '.join(slugs)}")
        for slug, share in self.vendors:
            if not SLUG.fullmatch(slug):
                raise ValueError(f"{slug!r} is not a vendor slug (lowercase letters, digits, - and _)")
            if not share > 0:
                raise ValueError(f"vendor {slug!r}: its share of arrivals must be above 0, not {share}")
        if self.hold_ms < 0:
            raise ValueError(f"hold_ms is a time, 0 or more, not {self.hold_ms}")
        for platform, day in self.platform_starts.items():
            if platform not in PLATFORMS:
                raise ValueError(f"platform_starts: {platform!r} is not a platform ({', '.join(PLATFORMS)})")
            if not 0 <= day < self.days:
                raise ValueError(f"platform_starts: {platform} starts on day {day}, outside the {self.days} days")

    @property
    def days(self) -> int:
        return self.weeks * 7

    @property
    def recruit_days(self) -> int:
        """Arrivals spread over the first quarter of the weeks (at most two weeks)."""
        return max(1, min(14, self.days // 4))


def parse_effect(text: str, arms: Sequence[str]) -> tuple[str, dict[str, float]]:
    """``OUTCOME=EFFECT`` (every treatment arm) or ``OUTCOME:ARM=EFFECT`` -> (outcome, {arm: effect})."""
    match = re.fullmatch(r"([a-z_.]+)(?::([a-z0-9_-]+))?=(-?\d+(?:\.\d+)?)", text.strip())
    if not match:
        raise ValueError(f"{text!r}: write OUTCOME=EFFECT or OUTCOME:ARM=EFFECT, e.g. affective_polarization=-0.2")
    outcome, arm, value = match.group(1), match.group(2), float(match.group(3))
    if outcome not in SURVEY_OUTCOMES + DAILY_OUTCOMES:
        raise ValueError(f"{outcome!r} cannot be planted; choose from {', '.join(SURVEY_OUTCOMES + DAILY_OUTCOMES)}")
    treated = [a for a in arms if a != "control"]
    if arm is not None and arm not in treated:
        raise ValueError(f"{arm!r} is not a treatment arm of the simulated study ({', '.join(treated)})")
    return outcome, {a: value for a in ([arm] if arm else treated)}


def parse_vendor(text: str) -> tuple[str, float]:
    """``SLUG=SHARE`` -> (slug, share of arrivals); the shares of a plan's vendors are relative to each other. Only
    the form is checked here: the slug and the share are checked where every plan's are, in ``Plan``."""
    slug, sign, share = text.strip().partition("=")
    try:
        value = float(share)
    except ValueError:
        value = math.nan
    if not sign or not math.isfinite(value):
        raise ValueError(f"{text!r}: write SLUG=SHARE, e.g. rep-data=45")
    return slug, value


def parse_platform_start(text: str) -> tuple[str, int]:
    """``PLATFORM=DAY`` -> (platform, day); the platform and the day are checked in ``Plan``."""
    platform, sign, day = text.strip().partition("=")
    if not sign or not day.strip().isdigit():
        raise ValueError(f"{text!r}: write PLATFORM=DAY, e.g. twitter=3")
    return platform.strip(), int(day)


def merge_effects(parsed: Sequence[tuple[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    effects: dict[str, dict[str, float]] = {}
    for outcome, by_arm in parsed:
        effects.setdefault(outcome, {}).update(by_arm)
    return effects


def waves_for(plan: Plan) -> list[tuple[str, int, int | None]]:
    """(kind, opens after days, open days) of the baseline and two follow-ups. The follow-ups open once a
    participant is included and treated (the day after both the inclusion and the baseline days are over)
    and close before the last arrival's last simulated day."""
    first = max(plan.baseline_days, plan.inclusion_days) + 1
    span = plan.days - plan.recruit_days - first
    if span < 6:
        raise ValueError(
            f"{plan.weeks} weeks leave {max(span, 0)} days after the baseline and inclusion days: too few for two "
            "follow-up surveys (add weeks or lower --baseline-days / --inclusion-days)"
        )
    return [("baseline", 0, 7), ("midline", first, 3), ("endline", first + span - 3, 3)]


# --- the population (pure) -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    index: int
    vendor: str  # the slug of the vendor whose link they follow
    arrival_day: int
    arrival_minute: int  # minutes after 08:00 local
    platforms: tuple[str, ...]  # the platforms they use; the first is where in-feed questions reach them
    party: str
    eligible: bool
    consents: bool
    installs: bool
    uninstall_day: int | None
    withdraw_day: int | None  # the day they withdraw on their status page (unless they uninstalled before)
    activity: Mapping[str, float]  # usual active minutes a day on each platform they use
    latent: Mapping[str, float]  # each survey outcome's person level (SD units)

    @property
    def vendor_id(self) -> str:
        return f"sim-{self.index:06d}"

    @property
    def platform(self) -> str:
        return self.platforms[0]


def population(plan: Plan) -> list[Person]:
    """The people of a plan. The vendor and the withdrawal come from generators of their own (``draw``), so that
    adding vendors or withdrawals leaves everything else about everyone as it was."""
    rng = np.random.default_rng([plan.seed, 0])
    slugs = [slug for slug, _ in plan.vendors]
    shares = np.array([share for _, share in plan.vendors]) / sum(share for _, share in plan.vendors)
    people = []
    for i in range(plan.participants):
        eligible = bool(rng.random() >= plan.not_eligible_share)
        consents = eligible and bool(rng.random() >= plan.abandon_share)
        arrival = int(rng.integers(0, plan.recruit_days))
        leaves = bool(rng.random() < plan.uninstall_share)
        platforms = tuple(p for p in PLATFORMS if rng.random() < PLATFORM_USE) or (PLATFORMS[int(rng.integers(0, 3))],)
        people.append(
            Person(
                index=i,
                vendor=slugs[int(draw(plan.seed, 10, i).choice(len(slugs), p=shares))],
                arrival_day=arrival,
                arrival_minute=int(rng.integers(0, 600)),
                platforms=platforms,
                party=("democrat", "republican")[int(rng.integers(0, 2))],
                eligible=eligible,
                consents=consents,
                installs=consents and bool(rng.random() >= plan.no_install_share),
                uninstall_day=int(rng.integers(arrival + 1, plan.days)) if leaves and arrival + 1 < plan.days else None,
                withdraw_day=withdrawal_day(plan, i, arrival),
                activity={p: float(np.clip(rng.normal(30, 12), 3, 120)) for p in platforms},
                latent={o: float(rng.normal(0, np.sqrt(PERSON_SHARE))) for o in SURVEY_OUTCOMES},
            )
        )
    return people


def draw(seed: int, *keys: int) -> np.random.Generator:
    """A generator for one person and moment, independent of the order the simulation visits them in."""
    return np.random.default_rng([seed, *keys])


def withdrawal_day(plan: Plan, index: int, arrival: int) -> int | None:
    rng = draw(plan.seed, 11, index)
    if rng.random() >= plan.withdraw_share or arrival + 1 >= plan.days:
        return None
    return int(rng.integers(arrival + 1, plan.days))


def active_minutes(plan: Plan, person: Person, platform: str, day: int, planted: float) -> int:
    """A person's active minutes on a platform on a day: their level there, the platform's common shock that day,
    noise, and the planted effect; 0 on a platform they do not use."""
    if platform not in person.activity:
        return 0
    k = PLATFORMS.index(platform)
    shock = draw(plan.seed, 1, day, k).normal(0, 4)
    noise = draw(plan.seed, 2, person.index, day, k).normal(0, 8)
    return int(np.clip(round(person.activity[platform] + shock + noise + planted), 0, 300))


def planted_minutes(effects: Mapping[str, Mapping[str, float]], platform: str, arm: str) -> float:
    """The planted change of a treated user's active minutes on ``platform``: the platform's own effect if one
    was planted, else the effect planted on every platform."""
    own = effects.get(f"{platform}.active_minutes", {})
    return own[arm] if arm in own else effects.get("active_minutes", {}).get(arm, 0.0)


def outcome_level(plan: Plan, person: Person, outcome: str, wave: int, planted: float) -> float:
    """Latent outcome in control SD units: person level (variance 0.8) + wave noise (0.2) + the planted effect."""
    noise = draw(plan.seed, 3, person.index, wave, SURVEY_OUTCOMES.index(outcome)).normal(0, np.sqrt(1 - PERSON_SHARE))
    return person.latent[outcome] + float(noise) + planted


# --- survey answers ------------------------------------------------------------------------------------


def _values(question: Question) -> list[Any]:
    values = [o["value"] for o in question.options if o["value"] != question.write_in_option]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    return sorted(values) if numeric else values


def _on_scale(values: Sequence[Any], level: float) -> Any:
    """The option a latent level lands on: the middle at 0, a quarter of the scale per SD."""
    k = len(values)
    return values[int(np.clip(round((k - 1) / 2 + level * (k - 1) / 4), 0, k - 1))]


def _number(low: int, high: int, center: float, level: float, slope: float) -> int:
    return int(np.clip(round(center + slope * level), low, high))


def survey_form(
    questions: Sequence[Question], levels: Mapping[str, float], rng: np.random.Generator, party: str
) -> dict[str, Any]:
    """POST data answering every question of an instrument (each page's form reads its own fields).

    The planted outcomes' items follow the person's latent levels so that each index moves one control
    SD per unit: thermometers and friend comfort (affective polarization: in-party warmer, out-party
    colder), WHO-5 (wellbeing) and the GSS question (trust = 100 minus "can't be too careful").
    Everything else is answered at random, the same way in every arm, by its kind, so that any question an
    instrument has (new ones included) is answered; a kind this does not know is an error, not a skipped page.
    """
    polar, well, trust = levels["affective_polarization"], levels["wellbeing"], levels["trust"]
    planted_numbers = {
        "ft_in": (50, polar, 15.0),
        "ft_out": (50, -polar, 15.0),
        "gss_trust": (50, -trust, 15.0),
    }
    planted_scales = {"sd_in": polar, "sd_out": -polar}
    data: dict[str, Any] = {"action": "next"}
    for q in questions:
        low, high = q.min_value if q.min_value is not None else 0, q.max_value if q.max_value is not None else 100
        if q.key == "party_id":
            data[q.key] = party
        elif q.key in planted_numbers:
            center, level, slope = planted_numbers[q.key]
            data[q.key] = _number(low, high, center, level, slope)
        elif q.key in planted_scales:
            data[q.key] = _on_scale(_values(q), planted_scales[q.key])
        elif q.kind == Question.Kind.MULTIPLE:
            data[q.key] = [_values(q)[0]]
        elif q.kind in (Question.Kind.SINGLE, Question.Kind.LIKERT, Question.Kind.HEADLINES):
            values = _values(q)
            for name in [f"{q.key}__{item['key']}" for item in q.items] or [q.key]:
                level = well if q.key == "wellbeing" else float(rng.normal(0, 1))
                data[name] = _on_scale(values, level)
        elif q.kind in (Question.Kind.SLIDER, Question.Kind.THERMOMETER, Question.Kind.NUMERIC):
            for name in [f"{q.key}__{item['key']}" for item in q.items] or [q.key]:
                data[name] = int(rng.integers(low, high + 1))
        elif q.kind == Question.Kind.TEXT:
            data[q.key] = "A simulated answer."
        else:
            raise SimulationError(f"{q.key}: no simulated answer for a {q.kind!r} question")
    return data


def implied_index_effects(
    questions: Sequence[Question], planted: Mapping[str, float], *, people: int = 400, seed: int = 0
) -> dict[str, float]:
    """What planting ``planted`` (survey outcome -> control SDs) does to every outcome index the platform computes,
    in the index's control SDs: an index that shares items with a planted outcome moves too (``trust_index`` sums
    the trust item and ``sd_out``, which follows affective polarization).

    The same synthetic people answer ``questions`` untreated and treated (``survey_form``, with the same random
    answers both times), each page through its own form as a participant's page would store it; the platform's
    indexes (``surveys.indexes``) standardize them against the untreated answers, and the effect is the difference
    of the means. A planted outcome comes back close to what was planted (the answer scales round it).
    """
    rng = np.random.default_rng([seed, 8])
    pages = [[q for q in questions if q.page == page] for page in sorted({q.page for q in questions})]
    rows: list[indexes.Scores] = []
    control: list[bool] = []
    for i in range(people):
        levels = {o: float(rng.normal()) for o in SURVEY_OUTCOMES}
        party = ("democrat", "republican")[i % 2]
        for treated in (False, True):
            shifted = {o: level + (planted.get(o, 0.0) if treated else 0.0) for o, level in levels.items()}
            data = survey_form(questions, shifted, draw(seed, 9, i), party)
            rows.append(indexes.item_scores(_stored_answers(pages, data)))
            control.append(not treated)
    scored = indexes.standardize(rows, control)
    effects = {}
    for name in indexes.INDEXES:
        treated_values = [row[name] for row, c in zip(scored, control, strict=True) if not c and name in row]
        control_values = [row[name] for row, c in zip(scored, control, strict=True) if c and name in row]
        if treated_values and control_values:
            effects[name] = float(np.mean(treated_values) - np.mean(control_values))
    return effects


def _stored_answers(pages: Sequence[Sequence[Question]], data: Mapping[str, Any]) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for questions in pages:
        form = SurveyPageForm(data, questions=questions, words={}, initial_answers={})
        if not form.is_valid():
            raise SimulationError(f"simulated answers refused: {form.errors.as_data()}")
        answers.update(form.answers())
    return answers


# --- the study -----------------------------------------------------------------------------------------


def ending_yesterday(plan: Plan) -> Plan:
    """The plan with its last day fixed (yesterday in the study's time zone, unless given), read off the real clock
    once, before the simulated one starts."""
    end = plan.end or (timezone.now().astimezone(ZoneInfo(plan.timezone)).date() - dt.timedelta(days=1))
    return dataclasses.replace(plan, end=end)


def first_day(plan: Plan) -> dt.date:
    if plan.end is None:
        raise ValueError("the plan's last day is not fixed yet (ending_yesterday)")
    return plan.end - dt.timedelta(days=plan.days - 1)


def arm_start_dates(plan: Plan) -> dict[str, dt.date]:
    """The treatment arms' start date on each platform (``Arm.starts_<platform>``): ``Plan.platform_starts``' day, or
    the day before the first simulated day."""
    first = first_day(plan)
    return {p: first + dt.timedelta(days=plan.platform_starts.get(p, -1)) for p in PLATFORMS}


def local_time(plan: Plan, day: int, hour: int, minute: int = 0) -> dt.datetime:
    date = first_day(plan) + dt.timedelta(days=day)
    return dt.datetime.combine(date, dt.time(hour), tzinfo=ZoneInfo(plan.timezone)) + dt.timedelta(minutes=minute)


def create_study(plan: Plan) -> Study:
    """A study of its own, marked simulated, running from the first simulated day, with the plan's hold and starts."""
    if Study.objects.filter(slug=plan.slug).exists():
        raise ValueError(f"A study {plan.slug!r} exists already; simulate into a new slug")
    start = local_time(plan, 0, 0) - dt.timedelta(days=1)
    with transaction.atomic():
        study = Study.objects.create(
            slug=plan.slug,
            name=plan.name
            or f"{SIMULATED_PREFIX}: {plan.participants} synthetic people, {plan.weeks} weeks, seed {plan.seed}",
            status=Study.Status.RUNNING,
            simulated=True,
            timezone=plan.timezone,
            baseline_days=plan.baseline_days,
            inclusion_days=plan.inclusion_days,
            ramp_days=min(14, plan.baseline_days),
            rank_hold_ms=plan.hold_ms,
            randomization_seed=hashlib.sha256(f"simulation|{plan.seed}".encode()).hexdigest(),
        )
        for arm in PAPER_ARMS:
            if arm.slug in plan.arms:
                Arm.objects.create(
                    study=study,
                    slug=arm.slug,
                    name=arm.name,
                    ranker_key=arm.slug,
                    allocation_weight=arm.allocation_weight,
                    is_control=arm.is_control,
                    **{f"starts_{p}": date for p, date in arm_start_dates(plan).items()},
                )
        outcomes = ("complete", "screenout", "overquota", "quality", "duplicate")
        for slug, _share in plan.vendors:
            RecruitmentSource.objects.create(
                study=study,
                slug=slug,
                name="Simulated panel" if slug == DEFAULT_VENDOR else f"Simulated vendor {slug}",
                pid_param="pid",
                **{f"{o}_url": f"https://vendor.invalid/simulated/{slug}/{o}?pid={{pid}}" for o in outcomes},
            )
        ConsentDocument.objects.create(
            study=study,
            version="1.0",
            text="Simulated participants agree to a simulated study.",
            questions=["I am a simulated participant"],
            effective_at=start,
        )
        for key, (title, body) in DEFAULT_COPY.items():
            PageCopy.objects.create(study=study, key=key, title=title, body=body)
        for kind, opens_after, open_days in waves_for(plan):
            Wave.objects.create(
                study=study,
                slug=kind,
                name=f"{kind.title()} survey",
                kind=kind,
                instrument=Instrument.objects.get(slug=f"prc-{kind}"),
                opens_after_days=opens_after,
                open_days=open_days,
                target=Wave.Target.INSTALLED if kind == "baseline" else Wave.Target.INCLUDED,
                payment_amount=0 if kind == "baseline" else study.survey_payment,
            )
        survey_services.load_in_feed_questions(study=study)
    return study


# --- the clock -----------------------------------------------------------------------------------------


class Clock:
    """The simulated time every ``timezone.now()`` answers while ``running`` is in force, also as the default
    of model fields declared ``default=timezone.now`` (which hold the function itself, not the name)."""

    def __init__(self, start: dt.datetime) -> None:
        self.at = start

    def now(self) -> dt.datetime:
        return self.at.astimezone(dt.UTC)

    @contextmanager
    def running(self) -> Iterator[Clock]:
        real_now = timezone.now
        fields = [f for model in apps.get_models() for f in model._meta.concrete_fields if f.default is real_now]
        for f in fields:
            _set_default(f, self.now)
        try:
            with mock.patch.object(timezone, "now", self.now), mock.patch.object(serving, "HOLD_CLOCK", SkippedHold()):
                yield self
        finally:
            for f in fields:
                _set_default(f, real_now)


class SkippedHold(serving.HoldClock):
    """The hold while a rehearsal runs: waiting for the end of a slate's hold moves this clock on at once instead of
    sleeping, so that every slate records the hold the study gives it (``served_ms``, ``hold_ms``: the lag ramp
    included) and the rehearsal does not wait. A forked worker carries on with its own copy."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.skipped

    async def sleep_until(self, deadline: float) -> None:
        self.skipped += max(0.0, deadline - self.monotonic())
        await asyncio.sleep(0)


def _set_default(model_field: Any, default: Callable[[], dt.datetime]) -> None:
    model_field.default = default
    model_field.__dict__.pop("_get_default", None)  # a cached_property holding the old default


# --- the participants' side ------------------------------------------------------------------------------


@dataclass
class Enrolled:
    person: Person
    token: str
    public_id: str
    install_day: int
    installed_at: dt.datetime
    arm: str
    control: bool
    status_key: str  # the private key of their status page (where they withdraw)
    answered: set[str] = field(default_factory=set)
    gone: bool = False

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def treated_on(self, plan: Plan, platform: str, at: dt.datetime) -> bool:
        """Whether their assigned arm's ranker runs for them on ``platform`` at ``at``, by the rule ``/rank`` follows
        (``participants.treatment``): never in control; else once their baseline is over and the arm is live there."""
        if self.control:
            return False
        start = treatment.treatment_start(self.installed_at, plan.baseline_days, arm_start_dates(plan)[platform])
        return start is not None and at >= start


@dataclass
class Tally:
    """What the rehearsal did, for the command's summary."""

    requests: int = 0
    arrivals: int = 0
    enrolled: int = 0
    slates: int = 0
    events: int = 0
    surveys: int = 0
    in_feed_answers: int = 0
    uninstalls: int = 0
    withdrawals: int = 0
    paid: int = 0

    def lines(self) -> list[str]:
        return [f"{name.replace('_', ' ')}: {value}" for name, value in vars(self).items()]

    @classmethod
    def total(cls, tallies: Sequence[Tally]) -> Tally:
        return cls(**{name: sum(getattr(t, name) for t in tallies) for name in vars(cls())})


def _expect(response: Any, status: int | tuple[int, ...], what: str) -> Any:
    wanted = (status,) if isinstance(status, int) else status
    if response.status_code not in wanted:
        body = getattr(response, "content", b"")[:600]
        raise SimulationError(f"{what}: HTTP {response.status_code}, expected {wanted}: {body!r}")
    return response


CODE = re.compile(r'data-testid="enrolment-code">([A-Z0-9-]+)<')
STATUS_LINK = re.compile(r'href="/p/([^/"]+)/" data-testid="status-link"')


class Rehearsal:
    """The people one process drives (every enrolled person, or a worker's share): the clock, the HTTP clients and
    the people it lives the days of."""

    def __init__(self, plan: Plan, study: Study, clock: Clock) -> None:
        self.plan, self.study, self.clock = plan, study, clock
        self.client = Client()
        self.loop = asyncio.new_event_loop()
        self.async_client = AsyncClient()
        self.enrolled: list[Enrolled] = []  # the people whose days this process lives
        self.tally = Tally()
        self.instruments = {
            wave.slug: list(wave.instrument.questions.all()) for wave in Wave.objects.filter(study=study)
        }
        self.windows = waves_for(plan)
        self.wave_order = {slug: i for i, (slug, _, _) in enumerate(self.windows)}

    # --- one HTTP exchange each -----------------------------------------------------------------------

    def _get(self, path: str, what: str, status: int | tuple[int, ...] = 200, **extra: Any) -> Any:
        self.tally.requests += 1
        return _expect(self.client.get(path, **extra), status, what)

    def _post(self, path: str, data: Any, what: str, status: int | tuple[int, ...] = 200, **extra: Any) -> Any:
        self.tally.requests += 1
        if isinstance(data, dict | list) and extra.pop("json", False):
            return _expect(
                self.client.post(path, orjson.dumps(data), content_type="application/json", **extra), status, what
            )
        return _expect(self.client.post(path, data, **extra), status, what)

    def _api(self, path: str, data: Any, what: str, member: Enrolled, status: int | tuple[int, ...] = 200) -> Any:
        return self._post(path, data, what, status, json=True, headers=member.headers)

    # --- signup and installation ---------------------------------------------------------------------

    def arrive(self, person: Person) -> Enrolled | None:
        """Vendor link, screener, consent, install page and extension registration, as a browser would; the
        enrolled participant, or None for one who stops before installing."""
        self.tally.arrivals += 1
        browser = Client(REMOTE_ADDR=f"10.{person.index >> 16 & 255}.{person.index >> 8 & 255}.{person.index & 255}")
        self.tally.requests += 1
        _expect(browser.get(f"/join/{self.study.slug}/{person.vendor}/", {"pid": person.vendor_id}), 302, "vendor link")
        answers = {
            "device": "laptop" if person.eligible else "tablet",
            "chrome": "yes",
            "platforms": list(person.platforms),
            "desktop_share": "60",
            "party": person.party,
            "interest": "yes",
        }
        self.tally.requests += 1
        _expect(browser.post("/signup/screener/", answers), 302, "screener")
        if not person.consents:
            return None
        self.tally.requests += 1
        _expect(browser.post("/signup/consent/", {"version": "1.0", "q0": "on"}), 302, "consent")
        if not person.installs:
            return None
        self.tally.requests += 1
        page = _expect(browser.get("/signup/install/"), 200, "install page").content.decode()
        code, status_key = CODE.search(page), STATUS_LINK.search(page)
        if code is None or status_key is None:
            raise SimulationError("install page: no enrolment code or status link shown")
        self.tally.requests += 1
        registered = _expect(
            browser.post(
                "/api/v1/extension/register",
                {"enrolment_code": code.group(1), "install_key": f"sim-install-{person.index:06d}-{uuid.uuid4().hex}"},
                content_type="application/json",
            ),
            201,
            "register",
        ).json()
        assignment = Assignment.objects.select_related("arm", "participant").get(
            participant__public_id=registered["user_id"]
        )
        if assignment.participant.enrolled_at is None:
            raise SimulationError("register: the participant is not recorded as installed")
        self.tally.enrolled += 1
        return Enrolled(
            person,
            registered["token"],
            registered["user_id"],
            person.arrival_day,
            assignment.participant.enrolled_at,
            assignment.arm.slug,
            assignment.arm.is_control,
            status_key.group(1),
        )

    # --- a day of an installed participant -------------------------------------------------------------

    def live(self, day: int, members: Sequence[Enrolled]) -> None:
        for member in members:
            if not member.gone:
                self.live_day(member, day)

    def live_day(self, member: Enrolled, day: int) -> None:
        person = member.person
        if person.uninstall_day == day:
            self.clock.at = local_time(self.plan, day, 8)
            self._api("/api/v1/extension/uninstall", {}, "uninstall", member)
            member.gone = True
            self.tally.uninstalls += 1
            return
        if person.withdraw_day == day:
            self.withdraw(member, day)
            return
        self.clock.at = local_time(self.plan, day, 9)
        minutes = {
            p: active_minutes(
                self.plan,
                person,
                p,
                day,
                planted_minutes(self.plan.effects, p, member.arm)
                if member.treated_on(self.plan, p, self.clock.at)
                else 0,
            )
            for p in person.platforms
        }
        self._api(
            "/api/v1/extension/heartbeat",
            {"platform": person.platform, "active_seconds": sum(minutes.values()) * 60, "heartbeat_id": f"hb-{day}"},
            "heartbeat",
            member,
        )
        if (day + person.index) % self.plan.rank_every == 0:
            self.rank(member, day, person.platforms[(day // self.plan.rank_every) % len(person.platforms)])
        self.clock.at = local_time(self.plan, day, 9, sum(minutes.values()) + 1)
        self.send_events(member, day, minutes)
        self.in_feed(member, day)
        self.surveys(member, day)

    def withdraw(self, member: Enrolled, day: int) -> None:
        """Leave the study as the status page offers: its withdrawal form, confirmed with a reason; then, as the page
        that follows says, uninstall the extension."""
        self.clock.at = local_time(self.plan, day, 8)
        status = f"/p/{member.status_key}/"
        self._get(status, "status page")
        self._get(f"{status}withdraw/", "withdrawal page")
        self._post(f"{status}withdraw/", {"confirm": "on", "reason": "Simulated: leaving."}, "withdrawal", 302)
        title = DEFAULT_COPY["withdrawn"][0]
        if title not in self._get(status, "status page after withdrawing").content.decode():
            raise SimulationError(f"status page after withdrawing: no {title!r}")
        self._api("/api/v1/extension/uninstall", {}, "uninstall after withdrawing", member)
        member.gone = True
        self.tally.withdrawals += 1

    def rank(self, member: Enrolled, day: int, platform: str) -> None:
        rng = draw(self.plan.seed, 4, member.person.index, day)
        posts = rng.choice(POSTS_PER_PLATFORM, SLATE_ITEMS, replace=False)
        body = {
            "session": {
                "session_id": f"sim-{member.person.index}-{day}",
                "user_id": member.public_id,
                "user_name_hash": hashlib.sha256(member.person.vendor_id.encode()).hexdigest(),
                "platform": platform,
                "url": f"https://www.{platform}.com/",
                "current_time": self.clock.now().strftime("%Y-%m-%d %H:%M:%S"),
            },
            "items": [post_item(platform, int(n)) for n in posts],
        }
        self.tally.requests += 1
        response = self.loop.run_until_complete(
            self.async_client.post(
                "/rank", data=orjson.dumps(body), content_type="application/json", headers=member.headers
            )
        )
        _expect(response, 200, "/rank")
        self.tally.slates += 1

    def send_events(self, member: Enrolled, day: int, minutes: Mapping[str, int]) -> None:
        """The day's per-minute pings (active page, with input), a view every other minute and a few engagements,
        one platform after the other from 09:00, in one batch."""
        start = local_time(self.plan, day, 9)
        rng = draw(self.plan.seed, 5, member.person.index, day)
        events: list[dict[str, Any]] = []
        for platform, count in minutes.items():
            for m in range(count):
                at = (start + dt.timedelta(minutes=m, seconds=5)).isoformat()
                events.append(
                    {"kind": "activity", "platform": platform, "at": at, "active_page": True, "user_active": True}
                )
                if m % 2 == 0:
                    events.append({"kind": "view", "platform": platform, "at": at, "item_id": f"{platform}-{m}"})
            for m in rng.choice(max(count, 1), min(count, int(rng.poisson(count / 15))), replace=False):
                at = (start + dt.timedelta(minutes=int(m), seconds=30)).isoformat()
                events.append({"kind": "engagement", "platform": platform, "at": at, "item_id": f"{platform}-{m}",
                               "action": "like"})  # fmt: skip
            start += dt.timedelta(minutes=count)
        if not events:
            return
        answer = self._api(
            "/api/v1/extension/events",
            {
                "batch_key": f"sim-batch-{member.person.index:06d}-{day:04d}",
                "extension_version": "sim-1.0",
                "events": events,
            },
            "events",
            member,
            status=(200, 201),
        ).json()
        if answer["rejected"]:
            raise SimulationError(f"events refused: {answer['rejected'][:3]}")
        self.tally.events += answer["accepted"]

    def in_feed(self, member: Enrolled, day: int) -> None:
        next_prompt = f"/api/v1/extension/in-feed/next?platform={member.person.platform}"
        prompt = self._get(next_prompt, "in-feed question", headers=member.headers).json()["prompt"]
        if prompt is None:
            return
        options = prompt["question"]["options"]
        choice = options[int(draw(self.plan.seed, 6, member.person.index, day).integers(0, len(options)))]
        self._api(
            "/api/v1/extension/in-feed/answers",
            {"prompt_id": prompt["prompt_id"], "value": choice["value"], "client_key": f"sim-in-feed-{day:04d}"},
            "in-feed answer",
            member,
            status=(200, 201),
        )
        self.tally.in_feed_answers += 1

    def surveys(self, member: Enrolled, day: int) -> None:
        """Open surveys, asked on the days a wave's window is open for this participant (the extension asks every
        day; on the other days the answer is an empty list)."""
        since = day - member.install_day
        if not any(opens <= since < opens + (length or 1) for _, opens, length in self.windows):
            return
        open_now = self._get("/api/v1/extension/surveys", "open surveys", headers=member.headers).json()["surveys"]
        for survey in open_now:
            wave = survey["wave"]
            if wave in member.answered:
                continue
            member.answered.add(wave)
            rng = draw(self.plan.seed, 7, member.person.index, self.wave_order[wave])
            if wave != "baseline" and rng.random() >= self.plan.follow_up_response:
                continue
            self.answer_survey(member, wave, urlsplit(survey["url"]).path, rng)

    def answer_survey(self, member: Enrolled, wave: str, path: str, rng: np.random.Generator) -> None:
        treated = wave != "baseline" and not member.control
        levels = {
            outcome: outcome_level(
                self.plan,
                member.person,
                outcome,
                self.wave_order[wave],
                self.plan.effects.get(outcome, {}).get(member.arm, 0.0) if treated else 0.0,
            )
            for outcome in SURVEY_OUTCOMES
        }
        data = survey_form(self.instruments[wave], levels, rng, member.person.party)
        for _page in range(30):
            self.tally.requests += 1
            response = self.client.post(path, data)
            if response.status_code != 302:
                if b"Thank you" in response.content:
                    self.tally.surveys += 1
                    return
                raise SimulationError(f"survey {wave}: HTTP {response.status_code} {response.content[:800]!r}")
        raise SimulationError(f"survey {wave} did not end")

    # --- the researchers' side ------------------------------------------------------------------------

    def pay_out(self, day: int) -> None:
        """At 17:00, a researcher in the payments role approves every owed credit in the admin, exports the gift-card
        payout batch from the payments dashboard, and imports the provider's results (every line paid)."""
        self.clock.at = local_time(self.plan, day, 17)
        researcher = Client()
        researcher.force_login(payments_researcher(self.study))
        owed = Payment.objects.filter(participant__study=self.study, status=Payment.Status.OWED)
        ids = [str(pk) for pk in owed.values_list("pk", flat=True)]  # the rows the admin's list shows
        if not ids:
            return
        self.tally.requests += 1
        approve = {"action": "approve", "_selected_action": ids}
        _expect(researcher.post("/admin/participants/payment/", approve), 302, "approve payments")
        self.tally.requests += 1
        export = {"study": self.study.slug, "method": PayoutMethod.GIFT_CARD}
        exported = _expect(researcher.post("/research/payments/export/", export), 200, "export payouts")
        batch = re.search(r'filename="payout-(\d+)-', exported["Content-Disposition"])
        if batch is None:
            raise SimulationError(f"export payouts: no batch file ({exported['Content-Disposition']!r})")
        lines = list(csv.DictReader(StringIO(exported.content.decode())))
        results = StringIO()
        writer = csv.writer(results, lineterminator="\n")
        writer.writerow(["recipient_id", "status", "amount"])
        writer.writerows([line["recipient_id"], "paid", line["amount"]] for line in lines)
        upload = SimpleUploadedFile("results.csv", results.getvalue().encode(), content_type="text/csv")
        self.tally.requests += 1
        path = f"/research/payments/batches/{batch.group(1)}/results/"
        _expect(researcher.post(path, {"results": upload}), 200, "import payout results")
        self.tally.paid += Payment.objects.filter(batch_id=int(batch.group(1)), status=Payment.Status.PAID).count()

    # --- the platform's periodic jobs ----------------------------------------------------------------

    def schedule(self, day: int) -> None:
        self.clock.at = local_time(self.plan, day, 6)
        call_command("run_survey_schedule", "--at", self.clock.now().isoformat(), stdout=StringIO())

    def rollups(self) -> None:
        first, last = first_day(self.plan), first_day(self.plan) + dt.timedelta(days=self.plan.days - 1)
        days = ["--start", first.isoformat(), "--end", last.isoformat(), "--study", self.study.slug]
        call_command("rollup_behaviour", *days, stdout=StringIO())
        call_command("backfill_rollups", *days, stdout=StringIO())

    def close(self) -> None:
        """Let the slate writer finish and end this loop's connections."""
        self.loop.run_until_complete(slatelog.close_writer())
        self.loop.run_until_complete(asyncdb.close_loop_pool())
        self.loop.close()


def payments_researcher(study: Study) -> User:
    """A staff account in the payments role for this simulated study; it cannot sign in (no usable password)."""
    user, created = User.objects.get_or_create(username=f"simulated-payments-{study.slug}", defaults={"is_staff": True})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
        user.groups.add(create_roles()[OPS])
    return user


# The posts' words: who did what, some of it bridging ("both sides ... have a point"), some of it divisive ("the other
# party is ruining everything"), so that the bridging arms' scores tell posts apart.
SUBJECTS = (
    "The city council", "A neighbour of mine", "Our school board", "The new bakery downtown", "A local volunteer group",
    "The state legislature", "My cousin", "The football team", "A small business owner", "The library",
)  # fmt: skip
PREDICATES = (
    "voted on the new bike lanes today.",
    "shared a thoughtful take on the budget debate.",
    "is organising a clean-up this weekend; everyone is welcome.",
    "posted about the election and the comments got heated.",
    "explained why both sides of the housing debate have a point.",
    "raised money for the food bank again this year.",
    "says the other party is ruining everything and its voters are idiots.",
    "wrote a long thread about what changed their mind.",
    "asked people to listen before they argue.",
    "celebrated twenty years in the neighbourhood.",
)


def post_text(platform: str, n: int) -> str:
    """The text of post ``n`` of a platform's pool: one of the hundred subject-predicate pairs, numbered."""
    return f"{SUBJECTS[n % len(SUBJECTS)]} {PREDICATES[n // len(SUBJECTS) % len(PREDICATES)]} ({platform} post {n})"


def prescore(platforms: Sequence[str] = PLATFORMS) -> int:
    """Score every post of the pools with the configured scorer, as the scorer workers would have done for the first
    slates that carried them, and store the scores where ``/rank`` reads them (Redis and PostgreSQL); returns how
    many texts the scorer scored (0 when all were stored already). The rehearsal runs no scorer worker and gives
    slates no time to wait for scores (``REHEARSAL_SETTINGS``): without this, every scoring arm would fall back as
    overloaded."""
    from rankers.scoring import scoring_attributes, worker
    from rankers.scoring.cache import text_digest

    texts = [post_text(platform, n) for platform in platforms for n in range(POSTS_PER_PLATFORM)]
    return worker.score_and_store({text_digest(text): text for text in texts}, scoring_attributes())


def post_item(platform: str, n: int) -> dict[str, Any]:
    """One of a fixed pool of synthetic posts per platform (so content is stored once and reused)."""
    engagements = {
        "reddit": {"upvote": n % 40, "downvote": n % 7, "comment": n % 13, "award": 0},
        "twitter": {"like": n % 40, "retweet": n % 9, "comment": n % 13, "share": n % 5},
        "facebook": {"like": n % 40, "love": n % 6, "comment": n % 13, "share": n % 5},
    }[platform]
    return {
        "id": f"sim-{platform}-{n}",
        "text": post_text(platform, n),
        "author_name_hash": hashlib.sha256(f"author-{n % 50}".encode()).hexdigest(),
        "type": "post",
        "embedded_urls": [],
        "created_at": "2024-10-01 12:00:00",
        "engagements": engagements,
    }


# Settings the rehearsal runs under: no scorer workers run, so slates go on with the scores stored (``prescore``)
# instead of waiting for the deadline; each /rank waits for its own slate's write; and no treatment is shed for
# the event loop's lag (``RANK_SHED_LAG_MS``): the rehearsal's loop runs one request at a time and stands still
# between them, which the lag monitor would read as a loop running far behind.
REHEARSAL_SETTINGS = {"PRC_SCORER_DEADLINE_S": 0.0, "RANK_WRITE_GRACE_S": 10.0, "RANK_SHED_LAG_MS": 0}


def simulate_study(plan: Plan, progress: Callable[[str], None] | None = None, workers: int = 1) -> tuple[Study, Tally]:
    """Run the whole rehearsal; returns the simulated study and what was done.

    With ``workers`` > 1, that many forked processes live the enrolled people's days (each its own database
    connection and clock; a person's share is their index modulo ``workers``), while this process runs the
    schedule and the arrivals. Arrivals stay in this process, one after the other in the plan's order, so that
    randomization gives everyone the same position, hence the same arm, whatever the number of workers.
    """
    say = progress or (lambda _line: None)
    plan = ending_yesterday(plan)
    people = population(plan)
    study = create_study(plan)
    say(f"posts scored: {prescore()}")
    clock = Clock(local_time(plan, 0, 0))
    with clock.running(), override_settings(**REHEARSAL_SETTINGS):
        forked = Forked(plan, study, clock, workers) if workers > 1 else None  # before this process connects again
        arrivals = Rehearsal(plan, study, clock)
        days: Days = forked or InProcess(arrivals)
        try:
            for day in range(plan.days):
                arrivals.schedule(day)
                days.start(day)  # the people enrolled on earlier days
                arrived = []
                for person in sorted((p for p in people if p.arrival_day == day), key=arrival_order):
                    clock.at = local_time(plan, day, 8, person.arrival_minute // 10)
                    if (member := arrivals.arrive(person)) is not None:
                        arrived.append(member)
                days.finish(day, arrived)  # and the day of the ones who arrived today
                done = Tally.total([arrivals.tally, *days.tallies()])
                say(f"day {day + 1}/{plan.days}: {done.enrolled} enrolled, {done.requests} requests")
            days.close()
            if plan.pay_out:
                arrivals.pay_out(plan.days - 1)
            arrivals.rollups()
        finally:
            days.stop()
            arrivals.close()
    return study, Tally.total([arrivals.tally, *days.tallies()])


def arrival_order(person: Person) -> tuple[int, int, int]:
    """The order people sign up in on their arrival day (the clock's minute, then the index): randomization
    gives positions in this order."""
    return person.arrival_day, person.arrival_minute // 10, person.index


class Days(Protocol):
    """Who lives the enrolled people's days: ``start`` begins a day for those enrolled before it, ``finish`` waits
    for it and lives it for the ones who arrived that day; ``tallies`` is what they did besides the arrivals."""

    def start(self, day: int) -> None: ...
    def finish(self, day: int, arrived: Sequence[Enrolled]) -> None: ...
    def tallies(self) -> list[Tally]: ...
    def close(self) -> None: ...
    def stop(self) -> None: ...


class InProcess:
    """This process lives everyone's days, in the arrivals' own rehearsal."""

    def __init__(self, rehearsal: Rehearsal) -> None:
        self.rehearsal = rehearsal

    def start(self, day: int) -> None:
        self.rehearsal.live(day, self.rehearsal.enrolled)

    def finish(self, day: int, arrived: Sequence[Enrolled]) -> None:
        self.rehearsal.enrolled.extend(arrived)
        self.rehearsal.live(day, arrived)

    def tallies(self) -> list[Tally]:
        return []  # counted in the arrivals' tally

    def close(self) -> None:
        pass

    def stop(self) -> None:
        pass


class Forked:
    """Worker processes, forked once (after closing this process's database connections, which they would share
    otherwise); each answers every command with its tally so far, or with the traceback that stopped it.

    Forked with ``os.fork`` rather than ``multiprocessing.Process``: the latter runs the after-fork hooks other
    libraries register, and kombu's closes the broker connections it inherited, which blocks for good on a
    consumer's pending read (seen in the test suite after a broker test). A worker touches none of them. The thread
    pools a worker's /rank uses (asgiref's for sync code, the ranking pool) start over in it: see
    ``prc_site.lib.forks``."""

    def __init__(self, plan: Plan, study: Study, clock: Clock, workers: int) -> None:
        connections.close_all()
        self.pipes: list[Connection] = []
        self.pids: list[int] = []
        self.latest = [Tally() for _ in range(workers)]
        for _k in range(workers):
            ours, theirs = multiprocessing.Pipe()
            pid = os.fork()
            if pid == 0:  # the worker: never returns to the caller
                for pipe in [*self.pipes, ours]:
                    pipe.close()
                code = 1
                try:
                    _serve(theirs, plan, study, clock)
                    code = 0
                finally:
                    os._exit(code)
            theirs.close()
            self.pipes.append(ours)
            self.pids.append(pid)

    def _send(self, command: str, day: int, arrived: Sequence[Enrolled] = ()) -> None:
        for k, pipe in enumerate(self.pipes):
            pipe.send((command, day, [m for m in arrived if m.person.index % len(self.pipes) == k]))

    def _wait(self) -> None:
        for k, pipe in enumerate(self.pipes):
            try:
                status, answer = pipe.recv()
            except EOFError:
                raise SimulationError(f"rehearsal worker {k} ended without answering") from None
            if status != "ok":
                raise SimulationError(f"rehearsal worker {k} stopped:\n{answer}")
            self.latest[k] = answer

    def start(self, day: int) -> None:
        self._send("start", day)

    def finish(self, day: int, arrived: Sequence[Enrolled]) -> None:
        self._wait()
        self._send("finish", day, arrived)
        self._wait()

    def tallies(self) -> list[Tally]:
        return self.latest

    def close(self) -> None:
        self._send("close", -1)
        self._wait()

    def stop(self) -> None:
        """Close the pipes (a worker still waiting for a command ends) and collect the workers; kill any left after
        30 s."""
        for pipe in self.pipes:
            pipe.close()
        deadline = time.monotonic() + 30
        for pid in self.pids:
            while os.waitpid(pid, os.WNOHANG) == (0, 0):
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    break
                time.sleep(0.05)


def _serve(pipe: Connection, plan: Plan, study: Study, clock: Clock) -> None:
    """A worker: lives its share of the enrolled people's days on command, with its own connections."""
    try:
        rehearsal = Rehearsal(plan, study, clock)
        while True:
            command, day, arrived = pipe.recv()
            if command == "close":
                rehearsal.close()
                pipe.send(("ok", rehearsal.tally))
                return
            if command == "start":
                rehearsal.live(day, rehearsal.enrolled)
            else:
                rehearsal.enrolled.extend(arrived)
                rehearsal.live(day, arrived)
            pipe.send(("ok", rehearsal.tally))
    except BaseException:  # the parent raises it, with this traceback
        pipe.send(("error", traceback.format_exc()))
    finally:
        connections.close_all()
