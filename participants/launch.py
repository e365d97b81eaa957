"""The launch checklist: what a study needs before it may recruit, as a list of check functions.

Each check takes the study and returns one ``CheckResult`` (a tick, or the reason it fails), optionally
with one ``CheckLine`` per thing it looked at (each survey wave with its own tick or reasons). The
participants app registers its own checks below; other apps add theirs from ``AppConfig.ready()`` with
``register_check`` (the rankers app checks every arm's ranker and scorer, the surveys app its waves), so
this module never imports them. ``study_status.change_study_status`` refuses Recruiting until every check
passes, and the study's checklist page shows the same list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError

from participants import validators
from participants.models import AnalysisPlan, ConsentDocument, Study


@dataclass(frozen=True)
class CheckLine:
    """One thing a check looked at (a wave, say), with its own tick or reason, shown under the check."""

    ok: bool
    text: str


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str  # what passed, or why not and what to do
    lines: tuple[CheckLine, ...] = ()

    @classmethod
    def passed(cls, name: str, detail: str, lines: tuple[CheckLine, ...] = ()) -> CheckResult:
        return cls(name, True, detail, lines)

    @classmethod
    def failed(cls, name: str, detail: str, lines: tuple[CheckLine, ...] = ()) -> CheckResult:
        return cls(name, False, detail, lines)


LaunchCheck = Callable[[Study], CheckResult]
_CHECKS: list[LaunchCheck] = []


def register_check(check: LaunchCheck) -> LaunchCheck:
    """Add a check to every study's checklist (idempotent; usable as a decorator)."""
    if check not in _CHECKS:
        _CHECKS.append(check)
    return check


def launch_checklist(study: Study) -> list[CheckResult]:
    return [check(study) for check in _CHECKS]


def launch_problems(study: Study) -> list[str]:
    """Why the study may not recruit yet, one line per failed check (empty: it may)."""
    return [f"{result.name}: {result.detail}" for result in launch_checklist(study) if not result.ok]


def _messages(error: ValidationError) -> str:
    return " ".join(error.messages)


@register_check
def one_control_arm(study: Study) -> CheckResult:
    name = "Exactly one control arm"
    arms = list(study.arms.order_by("id"))
    controls = [arm.name for arm in arms if arm.is_control]
    if len(controls) != 1:
        found = ", ".join(controls) if controls else "none"
        return CheckResult.failed(name, f"Mark exactly one arm as control (now: {found}).")
    if len(arms) < 2:
        return CheckResult.failed(name, "Add at least one treatment arm besides the control arm.")
    return CheckResult.passed(name, f"{controls[0]} is the control arm, beside {len(arms) - 1} treatment arm(s).")


@register_check
def arm_rankers_ready(study: Study) -> CheckResult:
    name = "Every arm's ranker is registered and its scorer configured"
    arms = list(study.arms.order_by("id"))
    if not arms:
        return CheckResult.failed(name, "The study has no arms yet.")
    problems = [
        f"{arm.name}: {problem}"
        for arm in arms
        for problem in validators.arm_settings_problems(arm.ranker_key, arm.ranker_config)
    ]
    if problems:
        return CheckResult.failed(name, " ".join(problems))
    return CheckResult.passed(name, ", ".join(f"{arm.name} → {arm.ranker_key}" for arm in arms))


@register_check
def consent_in_effect(study: Study) -> CheckResult:
    name = "A consent document in effect"
    document = ConsentDocument.objects.current_for(study.pk).first()
    if document is None:
        later = ConsentDocument.objects.filter(study=study).exists()
        reason = "Its consent document takes effect later." if later else "Add a consent document."
        return CheckResult.failed(name, reason)
    try:
        validators.validate_consent_questions(document.questions)
    except ValidationError as error:
        return CheckResult.failed(name, f"Version {document.version}: {_messages(error)}")
    if not document.text.strip():
        return CheckResult.failed(name, f"Version {document.version} has no text.")
    return CheckResult.passed(name, f"Version {document.version}, in effect since {document.effective_at:%Y-%m-%d}.")


@register_check
def active_source_with_redirects(study: Study) -> CheckResult:
    name = "At least one active recruitment source with its redirect links"
    sources = list(study.sources.filter(active=True).order_by("id"))
    if not sources:
        return CheckResult.failed(name, "Add a recruitment source, or resume a paused one.")
    problems = []
    for source in sources:
        if not source.complete_url:
            problems.append(f"{source.name} has no complete link to send participants back to the vendor.")
        for outcome in source.Outcome.values:
            try:
                validators.validate_redirect_template(source.redirect_template(outcome))
            except ValidationError as error:
                problems.append(f"{source.name}, {outcome} link: {_messages(error)}")
    if problems:
        return CheckResult.failed(name, " ".join(problems))
    return CheckResult.passed(name, ", ".join(source.name for source in sources))


@register_check
def screener_settings_valid(study: Study) -> CheckResult:
    name = "Screener rules, strata and time zone are valid"
    checks = (
        ("Screener rules", validators.validate_screener_rules, study.screener_rules),
        ("Strata", validators.validate_strata_fields, study.strata_fields),
        ("Time zone", validators.validate_timezone, study.timezone),
    )
    for label, validate, value in checks:
        try:
            validate(value)
        except ValidationError as error:
            return CheckResult.failed(name, f"{label}: {_messages(error)}")
    return CheckResult.passed(name, f"Time zone {study.timezone}; strata {', '.join(study.strata_fields) or 'none'}.")


@register_check
def analysis_plan_frozen(study: Study) -> CheckResult:
    """The pre-registration is frozen before launch (``participants.prereg``); required with
    ``PRC_ENV=production``, said but allowed elsewhere (demos, rehearsals, tests)."""
    name = "The pre-registration is frozen"
    plan = AnalysisPlan.objects.filter(study=study).first()
    if plan is not None:
        return CheckResult.passed(name, f"Frozen {plan.frozen_at:%Y-%m-%d}, SHA-256 {plan.frozen_hash[:12]}…")
    missing = "Not frozen yet: a PI freezes the analysis plan on Research → Pre-registration."
    if settings.PRODUCTION:
        return CheckResult.failed(name, missing)
    return CheckResult.passed(name, f"{missing} (Required before launch in production.)")
