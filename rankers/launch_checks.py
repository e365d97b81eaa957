"""What the study setup asks of the rankers app: the ranker keys a researcher may choose, whether an arm's
ranker can run (registered, its settings usable, and its scorer backend configured), and whether the scorer
workers could load the configured model.

Registered with the participants app in ``RankersConfig.ready()``; the launch checklist and the arm form
call it through ``participants.validators`` and ``participants.launch.register_check`` without importing
this app.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from participants.launch import CheckResult
from participants.models import Study
from rankers.plugins import all_rankers, inserting
from rankers.scoring import identity, readiness
from rankers.scoring.backends import BACKEND_NAMES
from rankers.system_checks import reads_attributes
from rankers.validation import is_http_url

# The settings each scorer backend cannot run without.
BACKEND_NEEDS = {
    "transformers": "PRC_SCORER_MODEL_DIR",
    "embedding": "PRC_SCORER_MODEL_DIR",
    "http": "PRC_SCORER_HTTP_URL",
}


def ranker_keys() -> list[str]:
    return sorted(all_rankers())


def scorer_problem() -> str | None:
    backend = settings.PRC_SCORER_BACKEND
    if backend not in BACKEND_NAMES:
        return f"the scorer backend PRC_SCORER_BACKEND={backend!r} is unknown ({', '.join(BACKEND_NAMES)})."
    needed = BACKEND_NEEDS.get(backend)
    if needed and not getattr(settings, needed):
        return f"the {backend} scorer backend needs {needed} to be set."
    return None


def arm_settings_problems(ranker_key: str, config: dict[str, Any]) -> list[str]:
    rankers = all_rankers()
    if ranker_key not in rankers:
        return [f"“{ranker_key}” is not a registered ranker; choose one of {', '.join(sorted(rankers))}."]
    problems = []
    if ranker_key == "external" and not is_http_url(str(config.get("url", ""))):
        problems.append('The external ranker needs {"url": "https://…/rank"} in its ranker settings.')
    problems += inserting.settings_problems(ranker_key, config)
    if rankers[ranker_key].attributes and (problem := scorer_problem()):
        problems.append(f"{ranker_key} needs attribute scores, but {problem}")
    return problems


SCORER_LOADS = "The scorer workers load the scorer model"


def scorer_model_loads(study: Study) -> CheckResult:
    """A launch check: no arm may rank on a model that the scorer workers failed to load (their start-up check,
    ``rankers.scoring.readiness``); with ``PRC_ENV=production`` a worker must also have loaded it."""
    arms = [arm.name for arm in study.arms.order_by("id") if reads_attributes(arm.ranker_key)]
    if not arms:
        return CheckResult.passed(SCORER_LOADS, "No arm ranks on attribute scores.")
    verdict = readiness.verdict(identity())
    if verdict.status == "failed":
        return CheckResult.failed(
            SCORER_LOADS,
            f"{', '.join(arms)} would run unscored. {verdict.describe()} Fix PRC_SCORER_BACKEND and its settings "
            "(see docs/rankers.md) and restart the scorer workers.",
        )
    if verdict.status == "loaded":
        return CheckResult.passed(SCORER_LOADS, verdict.describe())
    if settings.PRODUCTION:
        return CheckResult.failed(
            SCORER_LOADS,
            f"{verdict.describe()} Start the scorer workers (celery -A prc_site worker -Q "
            f"{settings.PRC_SCORER_QUEUE}) and check again: {', '.join(arms)} rank on their scores.",
        )
    return CheckResult.passed(SCORER_LOADS, f"{verdict.describe()} (Required before launch in production.)")
