"""Django system checks that keep the ranking path's timing and scoring honest.

Registered in ``RankersConfig.ready``; ``manage.py check``, ``migrate`` and ``python -m prc_site.serve`` run them,
so a bad configuration stops the platform before any participant is served:

- ``rankers.E001``: the scorer's deadline must be shorter than the ranker budget, or scoring is cut off by the
  budget and the slate falls back as ``timeout`` instead of ranking what was scored;
- ``rankers.E002``: the ranker budget plus the lookup allowance must be shorter than the hold, or answers go
  out later in treatment arms than in control (the hold exists so that latency cannot differ between arms);
- ``rankers.E003``: the same two rules for every arm of a recruiting or running study, with its own budget
  (``ranker_config.budget_ms``) and its study's hold;
- ``rankers.E004``: with ``PRC_ENV=production``, no arm of a recruiting or running study may rank on
  attributes scored by the word-list baseline, which is not the classifiers the paper's arms used.

The study checks read the database; when it cannot be read (not migrated yet, not reachable) they are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error
from django.db import DatabaseError

from participants.models import Arm, Study
from rankers.plugins import get_ranker


def _budget_ms(config: Any) -> float:
    budget = config.get("budget_ms") if isinstance(config, dict) else None
    return float(budget if budget is not None else settings.RANK_RANKER_BUDGET_MS)


def reads_attributes(ranker_key: str) -> bool:
    try:
        return bool(getattr(get_ranker(ranker_key), "attributes", ()))
    except LookupError:
        return False


def timing_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    deadline_ms = settings.PRC_SCORER_DEADLINE_S * 1000
    budget_ms = float(settings.RANK_RANKER_BUDGET_MS)
    lookup_ms = float(settings.RANK_LOOKUP_MS)
    hold_ms = float(settings.RANK_DEFAULT_HOLD_MS)
    errors: list[CheckMessage] = []
    if deadline_ms >= budget_ms:
        errors.append(
            Error(
                f"PRC_SCORER_DEADLINE_S ({deadline_ms:.0f} ms) must be shorter than RANK_RANKER_BUDGET_MS "
                f"({budget_ms:.0f} ms).",
                hint="Otherwise the budget cuts scoring off and every slow slate falls back as a timeout.",
                id="rankers.E001",
            )
        )
    if budget_ms + lookup_ms >= hold_ms:
        errors.append(
            Error(
                f"RANK_RANKER_BUDGET_MS + RANK_LOOKUP_MS ({budget_ms:.0f} + {lookup_ms:.0f} ms) must be shorter "
                f"than RANK_DEFAULT_HOLD_MS ({hold_ms:.0f} ms).",
                hint="Otherwise slow arms answer after the hold and latency differs between arms.",
                id="rankers.E002",
            )
        )
    return errors


def _live_arms() -> list[Arm]:
    """Arms of recruiting and running studies, or [] when the database cannot be read. Simulated studies are left
    out: their synthetic participants are answered without a hold, so that a rehearsal never sleeps."""
    try:
        live = Arm.objects.filter(study__status__in=Study.SIGNUP_STATUSES, study__simulated=False)
        return list(live.select_related("study"))
    except DatabaseError:
        return []


def study_timing(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    return list(_arm_timing_errors(_live_arms()))


def _arm_timing_errors(arms: Iterable[Arm]) -> Iterable[CheckMessage]:
    deadline_ms = settings.PRC_SCORER_DEADLINE_S * 1000
    lookup_ms = float(settings.RANK_LOOKUP_MS)
    for arm in arms:
        budget_ms = _budget_ms(arm.ranker_config)
        if reads_attributes(arm.ranker_key) and deadline_ms >= budget_ms:
            yield Error(
                f"Arm {arm}: the scorer's deadline (PRC_SCORER_DEADLINE_S, {deadline_ms:.0f} ms) is not shorter "
                f"than the arm's ranker budget ({budget_ms:.0f} ms).",
                hint="Raise the arm's ranker_config.budget_ms or lower PRC_SCORER_DEADLINE_S.",
                obj=arm,
                id="rankers.E003",
            )
        if not arm.is_control and budget_ms + lookup_ms >= arm.study.rank_hold_ms:
            yield Error(
                f"Arm {arm}: ranker budget + lookup ({budget_ms:.0f} + {lookup_ms:.0f} ms) is not shorter than "
                f"the study's hold ({arm.study.rank_hold_ms} ms).",
                hint="Raise Study.rank_hold_ms or lower the arm's ranker_config.budget_ms.",
                obj=arm,
                id="rankers.E003",
            )


def production_scorer(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    if not settings.PRODUCTION or settings.PRC_SCORER_BACKEND != "baseline":
        return []
    return [
        Error(
            f"Arm {arm} of the {arm.study.status} study {arm.study.slug!r} ranks on attributes "
            f"(ranker {arm.ranker_key!r}), but PRC_SCORER_BACKEND is 'baseline': word lists, not the classifiers "
            "the paper's arms used.",
            hint="Set PRC_SCORER_BACKEND to transformers, embedding, llm or http (see docs/rankers.md).",
            obj=arm,
            id="rankers.E004",
        )
        for arm in _live_arms()
        if reads_attributes(arm.ranker_key)
    ]
