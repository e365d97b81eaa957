"""Survey dashboard queries: plain rows for the page, the charts and the CSV export.

- ``wave_arm_rows``: per wave and arm, invited, completed, reminders sent and cancelled.
- ``daily_completions``: completions per local day, wave and arm (the completion-over-time chart).
- ``attrition``: the differential-attrition regressions of Table S19, models (1), (2) and (3).
- ``response_rows``: one row per response with flattened answers and standardized indexes (the export).
- ``in_feed_rows``: in-feed questions shown, answered and dismissed per arm, and per arm and question.
"""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate

from participants.dashboard import percent
from participants.models import Arm, Participant, Study
from surveys import indexes
from surveys.models import InFeedPrompt, Invitation, Question, Response, Wave


@dataclass(frozen=True)
class WaveArmRow:
    wave: str
    arm: str
    invited: int
    completed: int
    reminders_sent: int
    reminders_cancelled: int

    @property
    def completion_rate(self) -> float | None:
        return self.completed / self.invited if self.invited else None


def wave_arm_rows(study: Study) -> list[WaveArmRow]:
    rows = (
        Invitation.objects.filter(wave__study=study, participant__is_test=False)
        .values("wave__name", "wave_id", "participant__assignment__arm__name")
        .annotate(
            invited=Count("pk", filter=Q(invited_at__isnull=False) | Q(completed_at__isnull=False)),
            completed=Count("pk", filter=Q(completed_at__isnull=False)),
            reminders_sent=Sum("reminders_sent"),
            reminders_cancelled=Sum("reminders_cancelled"),
        )
        .order_by("wave_id", "participant__assignment__arm__name")
    )
    return [
        WaveArmRow(
            wave=row["wave__name"],
            arm=row["participant__assignment__arm__name"] or "Unassigned",
            invited=row["invited"],
            completed=row["completed"],
            reminders_sent=row["reminders_sent"] or 0,
            reminders_cancelled=row["reminders_cancelled"] or 0,
        )
        for row in rows
    ]


@dataclass(frozen=True)
class DailyCompletion:
    day: dt.date
    wave: str
    arm: str
    completed: int


def daily_completions(study: Study) -> list[DailyCompletion]:
    tz = zoneinfo.ZoneInfo(study.timezone)
    rows = (
        Invitation.objects.filter(wave__study=study, participant__is_test=False, completed_at__isnull=False)
        .annotate(day=TruncDate("completed_at", tzinfo=tz))
        .values("day", "wave__name", "participant__assignment__arm__name")
        .annotate(completed=Count("pk"))
        .order_by("day")
    )
    return [
        DailyCompletion(
            row["day"], row["wave__name"], row["participant__assignment__arm__name"] or "Unassigned", row["completed"]
        )
        for row in rows
    ]


# --- Differential attrition (Table S19) ------------------------------------------------------------


@dataclass(frozen=True)
class Coefficient:
    name: str
    estimate: float
    std_error: float
    p_value: float


@dataclass(frozen=True)
class Regression:
    title: str
    n: int
    coefficients: list[Coefficient]


def ols(y: Sequence[float], columns: Mapping[str, Sequence[float]]) -> list[Coefficient]:
    """OLS of ``y`` on a constant and ``columns`` with HC1 (robust) standard errors and normal p-values."""
    names = ["(Intercept)", *columns]
    x = np.column_stack([np.ones(len(y)), *[np.asarray(c, dtype=float) for c in columns.values()]])
    target = np.asarray(y, dtype=float)
    xtx_inv = np.linalg.pinv(x.T @ x)
    beta = xtx_inv @ x.T @ target
    residuals = target - x @ beta
    n, k = x.shape
    meat = (x * residuals[:, None] ** 2).T @ x
    covariance = xtx_inv @ meat @ xtx_inv * (n / max(n - k, 1))
    errors = np.sqrt(np.clip(np.diag(covariance), 0, None))
    result = []
    for name, estimate, error in zip(names, beta, errors, strict=True):
        p_value = math.erfc(abs(estimate / error) / math.sqrt(2)) if error > 0 else float("nan")
        result.append(Coefficient(name, float(estimate), float(error), p_value))
    return result


SURVIVAL_CATEGORIES = ("gender", "ethnicity", "education", "party_id", "income", "socmed_use")


def logistic_fit(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any], ridge: float = 1e-3) -> np.ndarray[Any, Any]:
    """Logistic regression by iteratively reweighted least squares, with a small ridge so that
    separable or collinear data still converge."""
    beta = np.zeros(x.shape[1])
    for _ in range(50):
        p = 1 / (1 + np.exp(-(x @ beta)))
        weights = np.clip(p * (1 - p), 1e-9, None)
        hessian = x.T @ (x * weights[:, None]) + ridge * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, x.T @ (y - p) - ridge * beta)
        beta += step
        if np.max(np.abs(step)) < 1e-8:
            break
    return beta


def survival_scores(baseline: Sequence[Mapping[str, Any]], y: Sequence[float]) -> list[float]:
    """Each participant's predicted probability of completing a follow-up, from baseline characteristics
    (gender, race, education, party, income, social media use, affective polarization): Table S19's
    "predicted survival score". One-hot categories; a missing answer is its own category."""
    columns: list[list[float]] = [[1.0] * len(baseline)]
    for key in SURVIVAL_CATEGORIES:
        levels = sorted({str(b.get(key)) for b in baseline})
        columns += [[1.0 if str(b.get(key)) == level else 0.0 for b in baseline] for level in levels[1:]]
    polarization = [b.get("affective_polarization") for b in baseline]
    known = [v for v in polarization if v is not None]
    fill = sum(known) / len(known) if known else 0.0
    columns.append([fill if v is None else float(v) for v in polarization])
    x = np.column_stack([np.asarray(c, dtype=float) for c in columns])
    beta = logistic_fit(x, np.asarray(y, dtype=float))
    return [float(v) for v in 1 / (1 + np.exp(-(x @ beta)))]


def attrition(study: Study) -> list[Regression]:
    """Table S19: completing a midline or endline survey, among included participants, (1) on treatment
    (any non-control arm), (2) on treatment interacted with a predicted survival score from baseline
    characteristics, (3) on each arm against control. Empty without both control and treated people."""
    followups = Invitation.objects.filter(
        wave__study=study, completed_at__isnull=False, wave__kind__in=(Wave.Kind.MIDLINE, Wave.Kind.ENDLINE)
    ).values("participant_id")
    sample = list(
        Participant.objects.filter(study=study, is_test=False, included_at__isnull=False, assignment__isnull=False)
        .annotate(done=Count("pk", filter=Q(pk__in=followups)))
        .values_list("pk", "assignment__arm__slug", "assignment__arm__is_control", "done")
    )
    arms = [arm for arm in Arm.objects.filter(study=study).order_by("id") if not arm.is_control]
    if len({control for _, _, control, _ in sample}) < 2:
        return []
    y = [1.0 if done else 0.0 for *_, done in sample]
    treated = [0.0 if control else 1.0 for _, _, control, _ in sample]
    dummies = {arm.name: [1.0 if slug == arm.slug else 0.0 for _, slug, _, _ in sample] for arm in arms}
    present = {name: column for name, column in dummies.items() if any(column)}
    models = [Regression("(1) Treatment", len(y), ols(y, {"Treatment": treated}))]
    if len(set(y)) == 2:
        baseline = _baseline_characteristics(study)
        score = survival_scores([baseline.get(pk, {}) for pk, *_ in sample], y)
        interaction = [t * s for t, s in zip(treated, score, strict=True)]
        columns = {"Treatment": treated, "Survival score": score, "Treatment x survival score": interaction}
        models.append(Regression("(2) Treatment x predicted survival", len(y), ols(y, columns)))
    models.append(Regression("(3) Each arm", len(y), ols(y, present)))
    return models


def _baseline_characteristics(study: Study) -> dict[int, dict[str, Any]]:
    rows = Response.objects.filter(
        wave__study=study, wave__kind=Wave.Kind.BASELINE, completed_at__isnull=False
    ).values_list("participant_id", "answers", "indexes")
    return {pk: {**{key: answers.get(key) for key in SURVIVAL_CATEGORIES}, **indexes} for pk, answers, indexes in rows}


# --- Responses, flattened and standardized ---------------------------------------------------------

FREE_TEXT_KINDS = (Question.Kind.TEXT,)


def flatten(answers: Mapping[str, Any], *, free_text: bool) -> dict[str, Any]:
    """``{question: value}`` and ``{question: {row: value}}`` as flat columns (``question.row``)."""
    flat: dict[str, Any] = {}
    for key, value in answers.items():
        if key.endswith("_write_in") and not free_text:
            continue
        if isinstance(value, Mapping):
            flat.update({f"{key}.{row}": row_value for row, row_value in value.items()})
        elif isinstance(value, list):
            flat[key] = ";".join(str(v) for v in value)
        else:
            flat[key] = value
    return flat


def response_rows(study: Study, *, free_text: bool = False) -> Iterator[dict[str, Any]]:
    """Every response of the study, keyed by pseudonymous id, with standardized indexes.

    Indexes are standardized against the control group's baseline responses (one scale for every
    wave, so differences between waves stay meaningful); without a baseline, against all control
    responses. Free-text answers are left out unless ``free_text``.
    """
    responses = list(
        Response.objects.filter(wave__study=study, participant__is_test=False)
        .select_related("wave", "participant__assignment__arm")
        .order_by("wave_id", "participant_id")
    )
    text_keys = set(
        Question.objects.filter(instrument__waves__study=study, kind__in=FREE_TEXT_KINDS).values_list("key", flat=True)
    )
    completed = [r for r in responses if r.completed_at is not None]
    control = [_is_control(r) for r in completed]
    baseline_control = [c and r.wave.kind == Wave.Kind.BASELINE for r, c in zip(completed, control, strict=True)]
    reference = baseline_control if any(baseline_control) else control
    standardized = dict(
        zip((r.pk for r in completed), indexes.standardize([r.item_scores for r in completed], reference), strict=True)
    )
    for response in responses:
        arm = getattr(getattr(response.participant, "assignment", None), "arm", None)
        answers = {k: v for k, v in response.answers.items() if free_text or k not in text_keys}
        yield {
            "participant": response.participant.public_id,
            "wave": response.wave.slug,
            "arm": arm.slug if arm else "",
            "started_at": response.started_at.isoformat(),
            "completed_at": response.completed_at.isoformat() if response.completed_at else "",
            "source": response.source,
            **flatten(answers, free_text=free_text),
            **{f"index.{name}": value for name, value in response.indexes.items()},
            **{f"z.{name}": value for name, value in standardized.get(response.pk, {}).items()},
        }


def _is_control(response: Response) -> bool:
    assignment = getattr(response.participant, "assignment", None)
    return bool(assignment and assignment.arm.is_control)


# --- in-feed questions ---------------------------------------------------------------------------

NO_ARM = "Unassigned"


@dataclass(frozen=True)
class InFeedRow:
    """In-feed questions of one arm (and one question, or all of them: ``question`` is "All")."""

    arm: str
    question: str
    participants: int  # enrolled in the arm now
    prompts: int  # participant-weeks with a question shown
    days_shown: int
    answered: int
    dismissed: int
    weeks: int

    @property
    def exposure_rate(self) -> float | None:
        """Percent of the arm's participant-weeks in the range in which a question was shown."""
        return percent(self.prompts, self.participants * self.weeks)

    @property
    def response_rate(self) -> float | None:
        return percent(self.answered, self.prompts)

    @property
    def dismissal_rate(self) -> float | None:
        return percent(self.dismissed, self.prompts)


def in_feed_rows(study: Study, start: dt.date, end: dt.date) -> tuple[list[InFeedRow], list[InFeedRow]]:
    """Per arm (all questions), and per arm and question, for prompts that first appeared in [start, end]."""
    weeks = max(1, math.ceil(((end - start).days + 1) / 7))
    enrolled: dict[str | None, int] = dict(
        Participant.objects.filter(study=study, is_test=False)
        .enrolled()
        .values_list("assignment__arm__name")
        .annotate(n=Count("pk"))
        .values_list("assignment__arm__name", "n")
    )
    grouped = (
        InFeedPrompt.objects.filter(
            participant__study=study, participant__is_test=False, first_shown_on__gte=start, first_shown_on__lte=end
        )
        .values("participant__assignment__arm__name", "question__key")
        .annotate(
            prompts=Count("pk"),
            days=Sum("days_shown"),
            answered=Count("pk", filter=Q(answered_at__isnull=False)),
            dismissed=Count("pk", filter=Q(dismissed_at__isnull=False)),
        )
        .order_by("participant__assignment__arm__name", "question__key")
    )
    by_question = [
        InFeedRow(
            arm=row["participant__assignment__arm__name"] or NO_ARM,
            question=row["question__key"],
            participants=enrolled.get(row["participant__assignment__arm__name"], 0),
            prompts=row["prompts"],
            days_shown=row["days"] or 0,
            answered=row["answered"],
            dismissed=row["dismissed"],
            weeks=weeks,
        )
        for row in grouped
    ]
    by_arm = []
    for arm in sorted({name or NO_ARM for name in enrolled} | {row.arm for row in by_question}):
        rows = [row for row in by_question if row.arm == arm]
        by_arm.append(
            InFeedRow(
                arm=arm,
                question="All",
                participants=enrolled.get(None if arm == NO_ARM else arm, 0),
                prompts=sum(r.prompts for r in rows),
                days_shown=sum(r.days_shown for r in rows),
                answered=sum(r.answered for r in rows),
                dismissed=sum(r.dismissed for r in rows),
                weeks=weeks,
            )
        )
    return by_arm, by_question
