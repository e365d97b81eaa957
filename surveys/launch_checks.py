"""What the launch checklist asks of the survey waves (registered in ``SurveysConfig.ready()``).

1. When the study includes participants only after the baseline survey (``Study.inclusion_needs_baseline``,
   as the paper does), an active baseline wave must exist, and it must not wait for inclusion itself (a
   baseline that invites only included participants would include nobody).
2. Every active wave must be usable: our own pages need an instrument with questions; an external survey
   tool needs its link (with ``{pid}``, which the completion callback names) and its callback secret.
3. Every active wave's window is one kind (fixed dates or days after signup, not a mix) and opens before
   it closes.

The checklist shows each wave on its own line, with a tick or its reasons.
"""

from __future__ import annotations

import zoneinfo

from django.db.models import Count

from participants.launch import CheckLine, CheckResult
from participants.models import Study
from surveys.models import Instrument, Wave

NAME = "Survey waves are ready"


def wave_problems(wave: Wave, *, question_count: int) -> list[str]:
    """Why ``wave`` cannot run as configured (empty: it can); ``question_count`` is its instrument's."""
    problems = []
    if wave.mode == Wave.Mode.EXTERNAL:
        if not wave.external_url:
            problems.append("External mode needs the survey tool's link.")
        elif "{pid}" not in wave.external_url:
            problems.append("The external link must contain {pid}, which the completion callback sends back.")
        if not wave.callback_secret:
            problems.append("External mode needs the callback secret the survey tool signs completions with.")
    elif question_count == 0:
        problems.append(f"Its instrument {wave.instrument.slug} has no questions.")
    fixed = wave.opens_at is not None or wave.closes_at is not None
    rolling = wave.opens_after_days is not None or wave.open_days is not None
    if fixed and rolling:
        problems.append("Give either fixed dates or days after signup, not both.")
    elif wave.closes_at is not None and (wave.opens_at is None or wave.closes_at <= wave.opens_at):
        problems.append("Its window must open before it closes.")
    if wave.kind == Wave.Kind.BASELINE and wave.target == Wave.Target.INCLUDED and wave.study.inclusion_needs_baseline:
        problems.append("A baseline for included participants only would include nobody: inclusion waits for it.")
    return problems


def describe(wave: Wave) -> str:
    """The wave as the checklist names it: name, kind, instrument or tool, and window (in the study's zone)."""
    if wave.opens_at is not None:
        tz = zoneinfo.ZoneInfo(wave.study.timezone)
        closes = f"{wave.closes_at.astimezone(tz):%Y-%m-%d %H:%M}" if wave.closes_at else "no end"
        window = f"{wave.opens_at.astimezone(tz):%Y-%m-%d %H:%M} to {closes}"
    else:
        days = wave.opens_after_days or 0
        opens = "at signup" if days == 0 else f"{days} days after signup"
        window = f"opens {opens}, " + (f"open {wave.open_days} days" if wave.open_days is not None else "no end")
    where = "external tool" if wave.mode == Wave.Mode.EXTERNAL else wave.instrument.slug
    return f"{wave.name} ({wave.get_kind_display().lower()}, {where}; {window})"


def waves_ready(study: Study) -> CheckResult:
    waves = list(Wave.objects.filter(study=study, active=True).select_related("instrument", "study").order_by("id"))
    instruments = Instrument.objects.filter(pk__in={w.instrument_id for w in waves}).annotate(n=Count("questions"))
    counts = dict(instruments.values_list("pk", "n"))
    lines, problems = [], []
    for wave in waves:
        reasons = wave_problems(wave, question_count=counts.get(wave.instrument_id, 0))
        lines.append(CheckLine(not reasons, f"{describe(wave)}: {' '.join(reasons) or 'ready'}"))
        problems += [f"{wave.name}: {reason}" for reason in reasons]
    if study.inclusion_needs_baseline and not any(w.kind == Wave.Kind.BASELINE for w in waves):
        problems.insert(
            0,
            "Participants are included only once they complete the baseline survey: add an active baseline wave"
            " (Surveys → Waves), or untick “inclusion needs baseline” on the study.",
        )
    if problems:
        return CheckResult.failed(NAME, " ".join(problems), tuple(lines))
    if not waves:
        return CheckResult.passed(NAME, "No survey waves; inclusion does not wait for a baseline survey.")
    return CheckResult.passed(NAME, f"{len(waves)} active wave(s).", tuple(lines))
