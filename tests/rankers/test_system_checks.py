"""The system checks that refuse a configuration under which the arms would not be what the paper ran."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from participants.models import Study
from tests.factories import ArmFactory, StudyFactory, paper_arms

pytestmark = pytest.mark.django_db


def check() -> str:
    out = io.StringIO()
    call_command("check", stdout=out, stderr=out)
    return out.getvalue()


def refused() -> str:
    with pytest.raises(SystemCheckError) as error:
        check()
    return str(error.value)


def test_the_defaults_pass() -> None:
    StudyFactory()  # recruiting, default hold, budget and scorer deadline
    assert "no issues" in check()


def test_a_scorer_deadline_as_long_as_the_ranker_budget_is_refused(settings: Any) -> None:
    settings.PRC_SCORER_DEADLINE_S = 0.4
    settings.RANK_RANKER_BUDGET_MS = 400
    message = refused()
    assert "rankers.E001" in message
    assert "PRC_SCORER_DEADLINE_S (400 ms) must be shorter than RANK_RANKER_BUDGET_MS (400 ms)" in message


def test_a_budget_plus_lookup_that_reaches_the_hold_is_refused(settings: Any) -> None:
    settings.RANK_RANKER_BUDGET_MS = 460
    settings.RANK_LOOKUP_MS = 40
    settings.RANK_DEFAULT_HOLD_MS = 500
    assert "rankers.E002" in refused()


def test_an_arm_whose_budget_does_not_fit_its_studys_hold_is_refused() -> None:
    study = StudyFactory(status=Study.Status.RUNNING, rank_hold_ms=300)
    ArmFactory(study=study, slug="bridging", ranker_key="uprank_bridging")
    message = refused()
    assert "rankers.E003" in message
    assert "ranker budget + lookup (400 + 50 ms) is not shorter than the study's hold (300 ms)" in message


def test_an_arm_whose_budget_is_shorter_than_the_scorer_deadline_is_refused() -> None:
    study = StudyFactory(status=Study.Status.RUNNING)
    ArmFactory(study=study, slug="bridging", ranker_key="uprank_bridging", ranker_config={"budget_ms": 300})
    message = refused()
    assert "rankers.E003" in message
    assert "scorer's deadline (PRC_SCORER_DEADLINE_S, 350 ms) is not shorter than the arm's ranker budget" in message


def test_a_draft_or_closed_study_is_not_checked() -> None:
    for status in (Study.Status.DRAFT, Study.Status.CLOSED):
        study = StudyFactory(status=status, rank_hold_ms=100)
        ArmFactory(study=study, ranker_key="uprank_bridging")
    assert "no issues" in check()


def test_production_refuses_the_word_list_scorer_for_a_running_bridging_arm(settings: Any) -> None:
    settings.PRC_ENV, settings.PRODUCTION, settings.PRC_SCORER_BACKEND = "production", True, "baseline"
    study = StudyFactory(status=Study.Status.RUNNING, slug="prc-2024")
    paper_arms(study)

    message = refused()

    assert "rankers.E004" in message
    assert "prc-2024/uprank_bridging" in message
    assert "prc-2024/bridging_downrank_toxic" in message
    assert "PRC_SCORER_BACKEND is 'baseline'" in message
    assert "prc-2024/control" not in message  # control reads no attributes


def test_production_accepts_a_real_scorer_and_development_accepts_the_baseline(settings: Any) -> None:
    paper_arms(StudyFactory(status=Study.Status.RECRUITING))
    settings.PRC_ENV, settings.PRODUCTION, settings.PRC_SCORER_BACKEND = "production", True, "transformers"
    assert "no issues" in check()
    settings.PRC_ENV, settings.PRODUCTION, settings.PRC_SCORER_BACKEND = "development", False, "baseline"
    assert "no issues" in check()
