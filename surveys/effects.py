"""A study's effect estimates and balance checks, from the database to plain rows.

- ``survey_panel``: completed responses as S3's panel, indexes standardized against the control group's
  baseline (``dashboard.response_rows``, the same numbers as the responses export).
- ``daily_panel``: S1's panel from the daily behaviour rollup, each treated participant's start per platform
  dated by ``participants.treatment.treatment_start``.
- ``run_effects``: every estimate (S3 per outcome index, S1 per daily outcome; pooled and per arm) into
  an ``EffectRun``, with progress as it goes; one run per study at a time.
- ``visible``: the blinding rule. Until a PI unblinds (``participants.prereg.unblind``), only pooled
  estimates are shown and no arm is named.
- ``balance_subjects``: included participants with Table S18's baseline covariates, coded from the
  baseline survey (``covariates``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from participants import balance, prereg
from participants.balance import Subject
from participants.behaviour import installed_days
from participants.models import Arm, DailyBehaviour, Participant, Study
from participants.paper import PLATFORMS
from participants.treatment import treatment_start
from surveys import dashboard, estimators, indexes
from surveys.estimators import POOLED, Estimate
from surveys.models import EffectRun, Response, Wave

logger = logging.getLogger(__name__)

SURVEY_OUTCOMES = tuple(indexes.INDEXES)
DAILY_MEASURES = ("active_minutes", "views", "engagements")  # per platform: S1's outcomes
Job = tuple[str, str, str]  # (spec, outcome, sample)
STALE_AFTER = dt.timedelta(hours=6)  # a run still "running" this long after it started died with its worker

# Table S18's baseline covariates, coded from baseline answers (None: not answered or "prefer not to say").
# Income is the bracket's midpoint in thousands of dollars, as the paper's IncomeK (10 ... 175).
INCOME_K = {1: 10.0, 2: 27.5, 3: 42.5, 4: 62.5, 5: 87.5, 6: 125.0, 7: 175.0}
SURVEY_COVARIATES = ("Male", "White", "Young", "Bachelors", "Democrat", "IncomeK", "SocialMediaMoreThan90Min")
# Baseline active minutes a day per platform, from the daily panel (``baseline_time``), in the paper's order.
BASELINE_TIME = {"facebook": "BaselineTimeFacebook", "twitter": "BaselineTimeTwitter", "reddit": "BaselineTimeReddit"}
COVARIATES = (*SURVEY_COVARIATES, *BASELINE_TIME.values())


def _flag(condition: bool | None) -> float | None:
    return None if condition is None else float(condition)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def covariates(answers: Mapping[str, Any]) -> dict[str, float | None]:
    """Table S18's covariates from one baseline response (the answer codes of ``surveys.library``)."""
    gender, ethnicity = answers.get("gender"), answers.get("ethnicity")
    age, education = _int(answers.get("age")), _int(answers.get("education"))
    income, use = _int(answers.get("income")), _int(answers.get("socmed_use"))
    party = answers.get("party_id")
    return {
        "Male": _flag(gender == "male") if gender in ("male", "female", "nonbinary") else None,
        "White": _flag(ethnicity == "white_or_caucasian") if ethnicity else None,
        "Young": _flag(age <= 2) if age else None,  # 18-34
        "Bachelors": _flag(education >= 5) if education else None,  # a bachelor's or graduate degree
        # Democrats and Democratic leaners, as the paper counts them ("Democrats and lean-Democrat").
        "Democrat": _flag(party == "democrat" or answers.get("party_leaner") == "democrat") if party else None,
        "IncomeK": INCOME_K.get(income) if income else None,
        "SocialMediaMoreThan90Min": _flag(use >= 4) if use else None,  # 90 minutes a day or more
    }


def balance_subjects(study: Study) -> list[Subject]:
    """Included real participants with an arm, each with the covariates of their completed baseline and their
    baseline time per platform (None without a baseline day in the daily panel)."""
    answers = dict(
        Response.objects.filter(
            wave__study=study, wave__kind=Wave.Kind.BASELINE, completed_at__isnull=False
        ).values_list("participant_id", "answers")
    )
    people = (
        Participant.objects.real()
        .included()
        .filter(study=study, assignment__isnull=False)
        .values_list("pk", "assignment__arm__name", "assignment__arm__is_control")
    )
    times = baseline_time(study)
    missing = dict.fromkeys(BASELINE_TIME.values())
    return [
        Subject(arm, control, {**covariates(answers.get(pk, {})), **times.get(pk, missing)})
        for pk, arm, control in people
    ]


def wave_periods(study: Study) -> dict[str, int]:
    """Each wave's period for S3: the baseline first (0), then follow-ups in the order they were set up."""
    waves = sorted(Wave.objects.filter(study=study), key=lambda w: (w.kind != Wave.Kind.BASELINE, w.pk))
    return {wave.slug: i for i, wave in enumerate(waves)}


def survey_panel(study: Study) -> pd.DataFrame:
    """S3's panel: one row per completed response, with its standardized indexes as outcome columns."""
    control = dict(Arm.objects.filter(study=study).values_list("slug", "is_control"))
    periods = wave_periods(study)
    rows = [
        {
            "participant": row["participant"],
            "period": periods[row["wave"]],
            "arm": row["arm"],
            "is_control": control[row["arm"]],
            "post": periods[row["wave"]] > 0,
            **{name: row.get(f"z.{name}") for name in SURVEY_OUTCOMES},
        }
        for row in dashboard.response_rows(study)
        if row["completed_at"] and row["arm"]
    ]
    columns = ["participant", "period", "arm", "is_control", "post", *SURVEY_OUTCOMES]
    return pd.DataFrame(rows, columns=columns)


def daily_panel(study: Study, *, baseline_only: bool = False) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """S1's daily panel from the behaviour rollup (``participants.DailyBehaviour``) and its outcome columns.

    One row per included real participant with an arm and each study day they had the extension installed
    (``participants.behaviour.installed_days``: from the local day of installation to the day before they left,
    or to the last rolled-up day), and any other day the extension reported something for them. A platform
    without a rollup row that day counts 0, and so does a whole installed day without one. Outcomes are
    ``<platform>.<measure>`` (active minutes, views, engagements). ``cohort`` is the local day of the extension's
    first installation; ``start.<platform>`` the local day a treated participant's arm began there
    (``participants.treatment.treatment_start``, the ranking path's own rule), empty for control and for an
    arm that never starts on that platform. ``baseline_only``: each participant's first ``baseline_days`` days
    only (Table S18's baseline time).
    """
    zone = ZoneInfo(study.timezone)
    outcomes = tuple(f"{platform}.{measure}" for platform in PLATFORMS for measure in DAILY_MEASURES)
    starts = {arm.slug: {p: arm.start_date(p) for p in PLATFORMS} for arm in Arm.objects.filter(study=study)}
    people = {
        pk: (installed, arm, control)
        for pk, installed, arm, control in Participant.objects.real()
        .included()
        .filter(study=study, assignment__isnull=False, enrolled_at__isnull=False)
        .values_list("pk", "enrolled_at", "assignment__arm__slug", "assignment__arm__is_control")
        if installed is not None
    }
    rollup = DailyBehaviour.objects.filter(study_id=study.pk, participant_id__in=list(people))
    last_day = rollup.aggregate(last=Max("day"))["last"]
    if last_day is None:
        return pd.DataFrame(), outcomes
    left = {pk: stay.left_on for pk, stay in balance.stays_by_participant(study).items()}
    cohorts = {pk: installed.astimezone(zone).date() for pk, (installed, _, _) in people.items()}
    baseline = dt.timedelta(days=study.baseline_days - 1)
    spans = {
        pk: span
        for pk, cohort in cohorts.items()
        if (
            span := installed_days(
                cohort, left.get(pk), min(last_day, cohort + baseline) if baseline_only else last_day
            )
        )
    }
    if baseline_only:
        rollup = rollup.filter(day__lte=max((last for _, last in spans.values()), default=last_day))
    rows = rollup.values_list("participant_id", "day", "platform", *DAILY_MEASURES)
    long = pd.DataFrame(list(rows), columns=["participant", "day", "platform", *DAILY_MEASURES])
    wide = long.pivot_table(index=["participant", "day"], columns="platform", values=list(DAILY_MEASURES))
    wide.columns = [f"{platform}.{measure}" for measure, platform in wide.columns]
    grid = pd.DataFrame(
        [(pk, first, (last - first).days + 1) for pk, (first, last) in spans.items()],
        columns=["participant", "first", "n"],
    )
    grid = grid.loc[grid.index.repeat(grid["n"])]
    offsets = pd.to_timedelta(grid.groupby("participant").cumcount().to_numpy(), unit="D")
    grid = pd.DataFrame(
        {"participant": grid["participant"].to_numpy(), "day": (pd.to_datetime(grid["first"]) + offsets).dt.date}
    )
    panel = grid.merge(wide.reset_index(), on=["participant", "day"], how="outer")
    if baseline_only:  # a reported day after the baseline, or of someone who left during it
        in_baseline = panel["day"] <= panel["participant"].map(lambda pk: cohorts[pk] + baseline)
        panel = panel[in_baseline]
    panel = panel.reindex(columns=["participant", "day", *outcomes]).fillna(0).sort_values(["participant", "day"])
    facts = {}
    for pk, (installed, arm, control) in people.items():
        fact: dict[str, Any] = {"arm": arm, "is_control": control, "cohort": cohorts[pk]}
        for platform in PLATFORMS:
            began = None if control else treatment_start(installed, study.baseline_days, starts[arm][platform])
            fact[f"start.{platform}"] = began.astimezone(zone).date() if began else None
        facts[pk] = fact
    panel = panel.join(pd.DataFrame.from_dict(facts, orient="index"), on="participant")
    return panel.reset_index(drop=True), outcomes


def baseline_time(study: Study) -> dict[int, dict[str, float]]:
    """Table S18's baseline time per platform: each participant's mean active minutes a day on the platform over
    their baseline days (the first ``baseline_days`` days of the daily panel, silent days 0), as
    ``BaselineTime<Platform>`` covariates."""
    panel, _ = daily_panel(study, baseline_only=True)
    if panel.empty:
        return {}
    columns = {f"{platform}.active_minutes": BASELINE_TIME[platform] for platform in PLATFORMS}
    means = panel.groupby("participant")[list(columns)].mean().rename(columns=columns)
    return {int(pk): {name: float(value) for name, value in row.items()} for pk, row in means.iterrows()}


def platform_sample(daily: pd.DataFrame, outcome: str) -> pd.DataFrame:
    """S1's sample for a ``<platform>.<measure>`` outcome: each treated participant's start on that platform as
    ``start``; treated participants whose arm never starts there are left out (neither treated nor control)."""
    platform = outcome.split(".")[0]
    frame = daily.assign(start=daily[f"start.{platform}"])
    return frame[frame["is_control"] | frame["start"].notna()]


def jobs(survey: pd.DataFrame, daily: pd.DataFrame, daily_outcomes: Iterable[str], arms: list[str]) -> list[Job]:
    """Every estimate to compute as (spec, outcome, sample), pooled first; a sample is ``POOLED`` or an arm."""
    survey_outcomes = SURVEY_OUTCOMES if not survey.empty else ()
    daily_outcomes = tuple(daily_outcomes) if not daily.empty else ()
    specs = [("S3", survey_outcomes), ("S1", daily_outcomes)]
    return [(spec, outcome, sample) for spec, outcomes in specs for sample in (POOLED, *arms) for outcome in outcomes]


def estimate(job: Job, *, survey: pd.DataFrame, daily: pd.DataFrame, baseline_days: int) -> Estimate | None:
    spec, outcome, sample = job
    arm = None if sample == POOLED else sample
    if spec == "S3":
        return estimators.estimate_survey(survey, outcome, arm=arm)
    return estimators.estimate_daily(platform_sample(daily, outcome), outcome, arm=arm, baseline_days=baseline_days)


class AlreadyRunning(Exception):
    pass


def start_run(study: Study, total: int = 0) -> EffectRun:
    """Claim the study's one running slot (a partial unique index), after failing any run that died."""
    stale = timezone.now() - STALE_AFTER
    EffectRun.objects.filter(study=study, status=EffectRun.Status.RUNNING, started_at__lt=stale).update(
        status=EffectRun.Status.FAILED, error="Stopped without finishing (worker lost).", finished_at=timezone.now()
    )
    try:
        with transaction.atomic():
            return EffectRun.objects.create(study=study, total=total)
    except IntegrityError:
        raise AlreadyRunning(f"Effects of {study.slug} are being computed already.") from None


def run_effects(
    *,
    study: Study,
    progress: Callable[[int, int], None] | None = None,
) -> EffectRun:
    """Compute every estimate of ``study`` into a new ``EffectRun``; raises ``AlreadyRunning`` if one is going."""
    run = start_run(study)
    try:
        panel, outcomes = daily_panel(study)
        arms = list(Arm.objects.filter(study=study, is_control=False).order_by("id").values_list("slug", flat=True))
        survey = survey_panel(study)
        todo = jobs(survey, panel, outcomes, arms)
        EffectRun.objects.filter(pk=run.pk).update(total=len(todo))
        results: list[dict[str, Any]] = []
        notes: list[dict[str, str]] = []
        for done, job in enumerate(todo, start=1):
            result = estimate(job, survey=survey, daily=panel, baseline_days=study.baseline_days)
            if result is None:
                notes.append(dict(zip(("spec", "outcome", "sample"), job, strict=True)))
            else:
                results.append(result.as_dict())
            EffectRun.objects.filter(pk=run.pk).update(done=done)
            if progress:
                progress(done, len(todo))
        finished = {"status": EffectRun.Status.DONE, "estimates": results, "notes": notes}
    except Exception as error:
        logger.exception("effect estimates of %s failed", study.slug)
        finished = {"status": EffectRun.Status.FAILED, "error": f"{type(error).__name__}: {error}"}
    EffectRun.objects.filter(pk=run.pk).update(finished_at=timezone.now(), **finished)
    run.refresh_from_db()
    return run


def latest_run(study: Study) -> tuple[EffectRun | None, EffectRun | None]:
    """The run in progress (if any) and the latest finished one."""
    running = EffectRun.objects.filter(study=study, status=EffectRun.Status.RUNNING).first()
    finished = EffectRun.objects.filter(study=study, status=EffectRun.Status.DONE).first()
    return running, finished


def visible(estimates: Iterable[Estimate], *, unblinded: bool) -> list[Estimate]:
    """The blinding rule: blinded, only pooled estimates (which name no arm); unblinded, all of them."""
    return [e for e in estimates if unblinded or e.sample == POOLED]


@dataclass(frozen=True)
class Shown:
    """What the effects page may show of a run: estimates, and those that could not be estimated."""

    estimates: list[Estimate]
    not_identified: list[dict[str, str]]
    unblinded: bool


def shown(study: Study, run: EffectRun | None) -> Shown:
    unblinded = prereg.is_unblinded(study)
    stored = [Estimate.from_dict(row) for row in (run.estimates if run else [])]
    notes = [n for n in (run.notes if run else []) if unblinded or n["sample"] == POOLED]
    return Shown(visible(stored, unblinded=unblinded), notes, unblinded)
