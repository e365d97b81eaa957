"""Baseline answers reach rankers: the PRC request's ``survey`` for external rankers that allow it, the
context for built-ins. The answers are those the participant gave in the baseline wave."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from io import StringIO
from typing import Any, ClassVar

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.test import AsyncClient
from django.utils import timezone
from ranking_challenge.request import RankingRequest

from participants.models import Participant, Study
from rankers.plugins import RankContext, RankResult, SlateItem, register
from surveys import services
from surveys.models import Instrument, Invitation, Wave
from tests.fake_http import serving
from tests.rankers.conftest import post_rank, prc_request, valid_response

pytestmark = pytest.mark.django_db(transaction=True)

RECEIVED: list[RankingRequest] = []
SEEN: list[Mapping[str, Any]] = []

SLOW_MACHINE = {"timeout_s": 10, "budget_ms": 10_000}  # a shared test machine must not turn this into a fallback
BASELINE_ANSWERS = {
    "party_id": "independent",
    "party_leaner": "republican",
    "gender": "female",
    "age": 3,
    "education": 5,
    "ideology": 5,
    "income": 4,
    "ethnicity": "hispanic_or_latino",
    "socmed_use": 2,
    "browser_mobile": {"facebook": 80, "x": "na", "reddit": 30},
}


@register("survey_recorder")
class SurveyRecorder:
    name: ClassVar[str]
    attributes: ClassVar[tuple[str, ...]] = ()

    def rank(self, items: Sequence[SlateItem], context: RankContext) -> RankResult:
        SEEN.append(dict(context.survey))
        return RankResult(ranked_ids=[i.id for i in items])


def recording_ranker(path: str, body: bytes) -> tuple[int, bytes]:
    request = RankingRequest.model_validate_json(body)
    RECEIVED.append(request)
    return 200, json.dumps({"ranked_ids": [item.id for item in request.items]}).encode()


@pytest.fixture(scope="module")
def ranker_url() -> Iterator[str]:
    with serving(recording_ranker) as url:
        yield url


@pytest.fixture(autouse=True)
def _clear() -> None:
    RECEIVED.clear()
    SEEN.clear()


def complete_baseline(participant: Participant) -> None:
    call_command("load_instruments", stdout=StringIO())
    wave = Wave.objects.create(
        study=participant.study,
        slug="baseline",
        name="Baseline",
        kind="baseline",
        opens_after_days=0,
        instrument=Instrument.objects.get(slug="prc-baseline"),
        target=Wave.Target.CONSENTED,
    )
    assert participant.consented_at is not None
    opens, closes = wave.window_for(participant.consented_at)
    invitation = Invitation.objects.create(participant=participant, wave=wave, opens_at=opens, closes_at=closes)
    services.complete_invitation(invitation=invitation, at=timezone.now(), answers=BASELINE_ANSWERS)


async def test_an_external_ranker_that_allows_it_receives_the_baseline_answers(
    async_client: AsyncClient, study: Study, enrol: Any, ranker_url: str
) -> None:
    participant, token = await enrol(
        "external", ranker_config={**SLOW_MACHINE, "url": f"{ranker_url}/rank", "send_survey": True}
    )
    await sync_to_async(complete_baseline)(participant)

    valid_response(await post_rank(async_client, token, prc_request(participant.public_id, n_posts=3)))

    survey = RECEIVED[-1].survey
    assert survey is not None
    assert (survey.party_id, survey.party_lean, survey.sex, survey.age) == ("independent", "republican", "female", 3)
    assert (survey.browser_perc_facebook, survey.browser_perc_twitter, survey.browser_perc_reddit) == (0.8, None, 0.3)


async def test_an_external_ranker_gets_no_survey_by_default(
    async_client: AsyncClient, study: Study, enrol: Any, ranker_url: str
) -> None:
    participant, token = await enrol("external", ranker_config={**SLOW_MACHINE, "url": f"{ranker_url}/rank"})
    await sync_to_async(complete_baseline)(participant)

    valid_response(await post_rank(async_client, token, prc_request(participant.public_id, n_posts=3)))

    assert RECEIVED[-1].survey is None


async def test_a_built_in_ranker_reads_the_same_answers_from_its_context(
    async_client: AsyncClient, study: Study, enrol: Any
) -> None:
    participant, token = await enrol("survey_recorder")
    valid_response(await post_rank(async_client, token, prc_request(participant.public_id, n_posts=3)))
    await sync_to_async(complete_baseline)(participant)

    valid_response(await post_rank(async_client, token, prc_request(participant.public_id, n_posts=3)))

    assert SEEN[0] == {}
    assert SEEN[-1]["party_id"] == "independent"
    assert SEEN[-1]["ideology"] == 5
