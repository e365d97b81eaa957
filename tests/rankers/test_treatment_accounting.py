"""Honest treatment accounting: unscored slates fall back, the dose is logged, the delivery page shows it."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import AsyncClient, Client

from participants.models import Study
from participants.roles import READER
from rankers.models import Slate
from rankers.rollups import rollup_day
from rankers.scoring import configure
from tests.factories import StudyFactory, paper_arms
from tests.fake_http import serving
from tests.rankers.conftest import item, post_rank, request_with, valid_response


def perspective_scoring_only_bridges(path: str, body: bytes) -> tuple[int, bytes]:
    """A Perspective-compatible scorer that scores texts mentioning "bridge" and fails on every other."""
    request = json.loads(body)
    if "bridge" not in request["comment"]["text"]:
        return 500, b'{"error": "internal"}'
    scores = {name: {"summaryScore": {"value": 0.7}} for name in request["requestedAttributes"]}
    return 200, json.dumps({"attributeScores": scores}).encode()


@pytest.fixture
def scorer_url() -> Iterator[str]:
    with serving(perspective_scoring_only_bridges) as url:
        yield f"{url}/v1alpha1/comments:analyze"


@pytest.fixture(autouse=True)
def fresh_scorer() -> Iterator[None]:
    configure()
    yield
    configure()


# Building the scorer's client on the first slate can outlast the default budget on a loaded machine; these
# tests are about what was scored, not about time.
GENEROUS_BUDGET = {"budget_ms": 10_000}


async def _slate(public_id: str) -> Slate:
    return await Slate.objects.aget(participant_id=public_id)


@pytest.mark.django_db(transaction=True)
async def test_a_treatment_slate_whose_scorer_is_unreachable_falls_back_as_unscored(
    async_client: AsyncClient, enrol: Any, settings: Any
) -> None:
    settings.PRC_SCORER_BACKEND = "http"
    settings.PRC_SCORER_HTTP_URL = "http://127.0.0.1:9/v1alpha1/comments:analyze"  # nothing listens there
    participant, token = await enrol("uprank_bridging", ranker_config=GENEROUS_BUDGET)
    body = request_with(participant.public_id, [item("a", "first post"), item("b", "second"), item("c", "third")])

    response = valid_response(await post_rank(async_client, token, body))

    assert response.ranked_ids == ["a", "b", "c"]
    assert response.metadata is not None
    assert response.metadata.intervention_on is False
    slate = await _slate(participant.public_id)
    assert (slate.fallback_reason, slate.intervention_on, slate.n_scored) == ("unscored", False, 0)
    assert slate.returned_ids == slate.original_ids


@pytest.mark.django_db(transaction=True)
async def test_a_partly_scored_slate_is_treated_and_logs_how_many_items_were_scored(
    async_client: AsyncClient, enrol: Any, settings: Any, scorer_url: str
) -> None:
    settings.PRC_SCORER_BACKEND = "http"
    settings.PRC_SCORER_HTTP_URL = scorer_url
    participant, token = await enrol("uprank_bridging", ranker_config=GENEROUS_BUDGET)
    items = [item("a", "plain words"), item("b", "a bridge between us"), item("c", "more plain words")]

    response = valid_response(await post_rank(async_client, token, request_with(participant.public_id, items)))

    assert response.metadata is not None
    assert response.metadata.intervention_on is True
    slate = await _slate(participant.public_id)
    assert (slate.fallback_reason, slate.n_scored, slate.n_items) == ("", 1, 3)


@pytest.mark.django_db(transaction=True)
async def test_a_ranker_that_reads_no_attributes_logs_no_dose(async_client: AsyncClient, enrol: Any) -> None:
    participant, token = await enrol("reverse")

    valid_response(await post_rank(async_client, token, request_with(participant.public_id, [item("a"), item("b")])))

    slate = await _slate(participant.public_id)
    assert (slate.intervention_on, slate.n_scored, slate.phase) == (True, None, "assigned")


# --- the delivery page ----------------------------------------------------------------------------------------

DAY = dt.date(2024, 10, 1)
RANGE = {"start": "2024-09-28", "end": "2024-10-05"}


def _log(study: Study, arm: str, **fields: Any) -> None:
    values: dict[str, Any] = {
        "participant_id": "p_00000000000000aa", "arm": arm, "effective_arm": arm, "ranker_key": arm,
        "platform": "twitter", "content_type": "post", "original_ids": ["a", "b", "c", "d"],
        "returned_ids": ["a", "b", "c", "d"], "served_ms": 502.0, "ranker_ms": 30.0, "intervention_on": True,
        "nrc": 0.0, "n_items": 4, "hold_ms": 500.0, "phase": "assigned",
    }  # fmt: skip
    values.update(fields)
    Slate.objects.create(study_id=study.id, served_at=dt.datetime.combine(DAY, dt.time(12), tzinfo=dt.UTC), **values)


@pytest.mark.django_db
def test_delivery_shows_the_share_of_items_scored_per_arm(client: Client) -> None:
    study = StudyFactory(status=Study.Status.RUNNING, timezone="UTC")
    paper_arms(study)
    _log(study, "uprank_bridging", n_scored=4)
    _log(study, "uprank_bridging", n_scored=2)
    _log(study, "uprank_bridging", n_scored=0, fallback_reason="unscored", intervention_on=False)
    _log(study, "control", intervention_on=False)
    rollup_day(day=DAY)
    user = User.objects.create_user("reader", password="pw-for-tests-only", is_staff=True)
    user.groups.add(Group.objects.get_or_create(name=READER)[0])
    client.force_login(user)

    response = client.get("/research/ranking/delivery/", {"study": study.slug, **RANGE})

    lines = {line["row"].arm_slug: line["row"] for line in response.context["table"]}
    assert lines["uprank_bridging"].scored_share == pytest.approx(6 / 12)
    assert lines["uprank_bridging"].fallbacks == {"unscored": 1}
    assert lines["control"].scored_share is None
    page = response.content.decode()
    assert re.search(r'data-arm="uprank_bridging">.*?<td data-col="scored">50%</td>', page, re.S)
    assert re.search(r'data-arm="control">.*?<td data-col="scored">\u2013</td>', page, re.S)  # an en dash
