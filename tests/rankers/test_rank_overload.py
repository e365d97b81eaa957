"""Overload sheds treatment work, never time: a web process running behind answers treatment slates in their
original order (``overloaded``), and a ranker gets only the time its hold has left."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence
from typing import ClassVar

import orjson
import pytest
from django.test import AsyncClient
from django.utils import timezone

from participants.paper import default_caps
from prc_site.lib.looplag import loop_lag
from rankers import checks, serving
from rankers.models import Slate
from rankers.plugins import RankContext, RankResult, SlateItem, register
from rankers.validation import ParsedRequest, parse_request
from tests.rankers.conftest import post_rank, prc_request, valid_response

RELEASE = threading.Event()


@pytest.fixture(autouse=True)
def _release_waiting_ranker() -> Iterator[None]:
    RELEASE.clear()
    yield
    RELEASE.set()


@register("test_waits")
class WaitingRanker:
    """Reverses the slate once released (after each test): its timeout never depends on the machine's speed."""

    name: ClassVar[str]
    attributes: ClassVar[tuple[str, ...]] = ()
    calls = 0

    def rank(self, items: Sequence[SlateItem], context: RankContext) -> RankResult:
        WaitingRanker.calls += 1
        RELEASE.wait(timeout=30)
        return RankResult(ranked_ids=[i.id for i in reversed(items)])


def arm(ranker_key: str, *, budget_ms: int, is_control: bool = False) -> serving.ArmInfo:
    caps = checks.Caps(rule=default_caps(ranker_key))
    return serving.ArmInfo(ranker_key, ranker_key, is_control, caps, config={"budget_ms": budget_ms})


def slate_request(user_id: str = "p-1") -> tuple[list[str], ParsedRequest]:
    body = prc_request(user_id)
    return [i["id"] for i in body["items"]], parse_request(orjson.dumps(body))


@pytest.mark.django_db(transaction=True)
async def test_while_the_process_runs_behind_treatment_slates_keep_their_order_and_control_is_untouched(
    async_client: AsyncClient, enrol, settings
) -> None:
    treated, token = await enrol("reverse")
    control, control_token = await enrol("control")
    settings.RANK_SHED_LAG_MS = 25.0  # the default (``enrol`` turns shedding off for tests not about time)
    loop_lag().observe(1_000_000)  # the loop was measured running far behind

    body = prc_request(treated.public_id)
    original = [i["id"] for i in body["items"]]
    answer = valid_response(await post_rank(async_client, token, body))
    assert answer.ranked_ids == original
    assert answer.metadata.intervention_on is False
    control_answer = valid_response(await post_rank(async_client, control_token, prc_request(control.public_id)))
    assert control_answer.metadata.intervention_on is False

    slate = await Slate.objects.aget(participant_id=treated.public_id)
    assert (slate.fallback_reason, slate.intervention_on) == (checks.OVERLOADED, False)
    control_slate = await Slate.objects.aget(participant_id=control.public_id)
    assert control_slate.fallback_reason == ""  # control ran its pass-through as always

    deadline = time.monotonic() + 30
    while loop_lag().behind_ms() > settings.RANK_SHED_LAG_MS and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    caught_up = valid_response(await post_rank(async_client, token, prc_request(treated.public_id)))
    assert caught_up.metadata.intervention_on is True  # caught up: treatment comes back


async def test_a_ranker_that_starts_late_gets_only_the_time_its_hold_has_left(settings) -> None:
    settings.RANK_LOOKUP_MS = 50
    original, parsed = slate_request()
    # Received 1.8 s ago: the lookup overran its 50 ms by 1.75 s, so a 2 s budget has 0.25 s left.
    started = time.monotonic()
    outcome = await serving.rank_slate(
        parsed, arm("test_waits", budget_ms=2000), user_id="p-1", now=timezone.now(), received=started - 1.8
    )
    elapsed = time.monotonic() - started
    assert outcome.fallback_reason == checks.TIMEOUT
    assert outcome.ranked_ids == original
    assert elapsed < 1.0  # the whole budget would have been 2 s


async def test_a_treatment_with_no_time_left_is_shed_before_its_ranker_runs_but_control_still_runs(settings) -> None:
    settings.RANK_LOOKUP_MS = 50
    original, parsed = slate_request()
    calls = WaitingRanker.calls
    received = time.monotonic() - 0.5  # a 400 ms budget ended 50 ms ago
    outcome = await serving.rank_slate(
        parsed, arm("test_waits", budget_ms=400), user_id="p-1", now=timezone.now(), received=received
    )
    assert (outcome.fallback_reason, outcome.ranked_ids, outcome.intervention_on) == (
        checks.OVERLOADED,
        original,
        False,
    )
    assert WaitingRanker.calls == calls  # never started

    control = await serving.rank_slate(
        parsed, arm("control", budget_ms=400, is_control=True), user_id="p-1", now=timezone.now(), received=received
    )
    assert (control.fallback_reason, control.ranked_ids) == ("", original)


@register("test_finishes_its_call")
class CallFinishingRanker:
    """An async ranker whose client library, told to stop, first finishes its call (the cancellation is lost)."""

    name: ClassVar[str]
    attributes: ClassVar[tuple[str, ...]] = ()

    async def arank(self, items: Sequence[SlateItem], context: RankContext) -> RankResult:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            await asyncio.sleep(1.5)
        return RankResult(ranked_ids=[i.id for i in reversed(items)])

    def rank(self, items: Sequence[SlateItem], context: RankContext) -> RankResult:
        raise NotImplementedError


async def test_a_ranker_past_its_budget_is_answered_for_at_the_budget_even_if_it_ignores_being_stopped() -> None:
    original, parsed = slate_request()
    started = time.monotonic()
    outcome = await serving.rank_slate(
        parsed, arm("test_finishes_its_call", budget_ms=200), user_id="p-1", now=timezone.now()
    )
    assert (outcome.fallback_reason, outcome.ranked_ids) == (checks.TIMEOUT, original)
    assert time.monotonic() - started < 1.0  # not the 1.7 s the ranker took to stop
