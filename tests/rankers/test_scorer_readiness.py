"""A study arm does not launch on a scorer model that the scorer workers could not load: the workers' start-up
reports (rankers.scoring.readiness) reach the launch checklist, /healthz and the delivery page. The worker side
(a real scorer process that fails to load, or loads) is in test_scoring_service.py."""

from __future__ import annotations

from typing import Any

import pytest

from participants.launch import CheckResult, launch_checklist
from participants.models import Study
from participants.study_status import transition_refusal
from rankers.launch_checks import SCORER_LOADS
from rankers.scoring import identity, readiness
from tests.factories import ArmFactory, StudyFactory
from tests.rankers.conftest import reader_browser

pytestmark = pytest.mark.django_db

ERROR = "ScorerUnavailable: PRC_SCORER_MODEL_DIR=/models/bridging holds no config.json"


def study_with(*rankers: str) -> Study:
    study = StudyFactory(status=Study.Status.DRAFT, timezone="UTC")
    ArmFactory(study=study, slug="control", ranker_key="control", is_control=True)
    for ranker in rankers:
        ArmFactory(study=study, slug=ranker.replace("_", "-"), name=ranker, ranker_key=ranker)
    return study


def scorer_check(study: Study) -> CheckResult:
    [check] = [result for result in launch_checklist(study) if result.name == SCORER_LOADS]
    return check


def test_a_study_may_not_recruit_while_a_scorer_worker_could_not_load_its_arms_model() -> None:
    study = study_with("uprank_bridging")
    readiness.report("scorer@node-1", identity(), error=ERROR)

    check = scorer_check(study)

    assert not check.ok
    assert "uprank_bridging would run unscored" in check.detail
    assert f"Scorer worker scorer@node-1 could not load {identity()}" in check.detail
    assert ERROR in check.detail
    assert ERROR in (transition_refusal(study, Study.Status.RECRUITING) or "")

    readiness.report("scorer@node-1", identity())  # the same node starts again with the model fixed
    assert scorer_check(study).ok
    assert "loaded by scorer@node-1" in scorer_check(study).detail


def test_a_failure_to_load_another_model_does_not_block_this_one() -> None:
    study = study_with("uprank_bridging")
    readiness.report("scorer@old", "transformers:/models/retired", error=ERROR)
    readiness.report("scorer@new", identity())

    assert scorer_check(study).ok


def test_in_production_a_scorer_worker_must_have_loaded_the_model_before_launch(settings: Any) -> None:
    study = study_with("bridging_downrank_toxic")
    assert scorer_check(study).ok  # outside production an unknown state is allowed, and said

    settings.PRODUCTION = True
    check = scorer_check(study)
    assert not check.ok
    assert f"No scorer worker has reported loading {identity()} yet" in check.detail

    readiness.report("scorer@node-2", identity())
    assert scorer_check(study).ok


def test_a_study_whose_arms_read_no_attributes_needs_no_scorer(settings: Any) -> None:
    settings.PRODUCTION = True
    readiness.report("scorer@node-1", identity(), error=ERROR)

    check = scorer_check(study_with())

    assert check.ok
    assert check.detail == "No arm ranks on attribute scores."


def test_the_delivery_page_says_the_scorer_workers_could_not_load_the_model() -> None:
    readiness.report("scorer@node-1", identity(), error=ERROR)
    study = StudyFactory(status=Study.Status.RUNNING, timezone="UTC")
    browser = reader_browser()

    page = browser.get("/research/ranking/delivery/", {"study": study.slug}).content.decode()

    line = page[page.index('id="scorer-workers"') :][:800]
    assert line.startswith('id="scorer-workers" class="note bad"')
    assert ERROR in line
    assert "run\n  unscored" in line
