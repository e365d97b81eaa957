"""``GET /api/v1/extension/in-feed/next`` through the ASGI entry point uvicorn serves (``surveys.in_feed_asgi``):
the same answers, errors and records as the DRF view that the test client reaches."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from django.test import Client

from participants.models import ExtensionInstall, Participant, Study
from surveys.models import InFeedPrompt, InFeedQuestion
from tests.asgi import acall, close_loop_connections
from tests.factories import ConsentDocumentFactory
from tests.surveys.test_in_feed_api import DAY0, NEXT, Clock, enrolled
from tests.surveys.test_in_feed_api import clock as clock
from tests.surveys.test_in_feed_api import study as study

pytestmark = pytest.mark.django_db(transaction=True)  # the loop's own connections see only committed rows


def asgi_get(query: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, dict[str, str], Any]:
    """One request through ``prc_site.asgi.application`` on a fresh event loop, as uvicorn would send it."""

    async def call() -> tuple[int, dict[str, str], Any]:
        try:
            response = await acall(method, NEXT, headers=headers, query=query)
        finally:
            await close_loop_connections()  # the sync thread's connection too, for the flush
        return response.status_code, response.headers, response.json()

    return asyncio.run(call())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def through_django(client: Client, query: str, headers: dict[str, str]) -> tuple[int, Any]:
    reply = client.get(f"{NEXT}?{query}", headers=headers)
    return reply.status_code, reply.json()


def test_over_two_weeks_the_asgi_path_offers_one_question_a_week_on_the_first_platform_for_three_days(
    study: Study, clock: Clock
) -> None:
    enrolled(study, "tok-asgi-weeks")
    shown = []
    for day in range(14):
        clock.day(day)
        for platform in ("facebook", "reddit", "facebook"):
            status, _, body = asgi_get(f"platform={platform}", bearer("tok-asgi-weeks"))
            assert status == 200
            if body["prompt"]:
                shown.append((day, platform, body["prompt"]["prompt_id"], body["prompt"]["day"]))

    # Asked twice a day on facebook: the second ask is the read-only path and must agree with the first.
    assert [(day, platform, n) for day, platform, _, n in shown] == [
        (week * 7 + d, "facebook", d + 1) for week in range(2) for d in range(3) for _ in range(2)
    ]
    prompts = list(InFeedPrompt.objects.order_by("sequence"))
    assert [(p.sequence, p.days_shown, p.platform) for p in prompts] == [(1, 3, "facebook"), (2, 3, "facebook")]
    assert [prompt_id for *_, prompt_id, _ in shown] == [prompts[0].pk] * 6 + [prompts[1].pk] * 6


def test_the_asgi_path_answers_exactly_what_the_django_view_answers_for_the_same_state(
    client: Client, study: Study, clock: Clock
) -> None:
    enrolled(study, "tok-asgi-same")
    for day in (0, 1, 2, 3):
        clock.day(day)
        first = asgi_get("platform=twitter", bearer("tok-asgi-same"))  # records the day (through the service)
        again = asgi_get("platform=twitter", bearer("tok-asgi-same"))  # already recorded: the one read
        view = through_django(client, "platform=twitter", bearer("tok-asgi-same"))
        assert first[2] == again[2] == view[1]
        assert first[0] == again[0] == view[0] == 200
    assert again[2] == {"prompt": None}  # day 3: the three-day offer is over
    assert InFeedPrompt.objects.get().days_shown == 3


def test_the_asgi_path_gives_nothing_to_withdrawn_or_unconsented_participants_and_stores_nothing(
    study: Study, clock: Clock
) -> None:
    withdrawn = enrolled(study, "tok-asgi-gone")
    Participant.objects.filter(pk=withdrawn.pk).update(withdrawn_at=DAY0 - dt.timedelta(minutes=1))
    enrolled(study, "tok-asgi-old")
    assert asgi_get("platform=reddit", bearer("tok-asgi-gone"))[::2] == (200, {"prompt": None})

    # A new version of the consent, not agreed to yet.
    ConsentDocumentFactory(study=study, version="2.0", effective_at=DAY0 - dt.timedelta(minutes=1))

    assert asgi_get("platform=reddit", bearer("tok-asgi-old"))[::2] == (200, {"prompt": None})
    assert not InFeedPrompt.objects.exists()


def test_a_question_the_participant_cannot_be_asked_yields_no_prompt_on_the_asgi_path(
    study: Study, clock: Clock
) -> None:
    InFeedQuestion.objects.filter(study=study).exclude(key="violence_metaperception").update(active=False)
    enrolled(study, "tok-asgi-noparty", party="")  # no party: [outparty] cannot be piped

    status, _, body = asgi_get("platform=reddit", bearer("tok-asgi-noparty"))

    assert (status, body) == (200, {"prompt": None})
    assert not InFeedPrompt.objects.exists()


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("platform=reddit", {}),
        ("platform=reddit", {"Authorization": "Bearer not-a-token"}),
        ("platform=reddit", {"Authorization": "Bearer tok-asgi-removed"}),
        ("", {"Authorization": "Bearer tok-asgi-err"}),
        ("platform=myspace", {"Authorization": "Bearer tok-asgi-err"}),
        ("platform=", {"X-Extension-Token": "tok-asgi-err"}),
    ],
    ids=["no-token", "unknown-token", "uninstalled", "no-platform", "unknown-platform", "blank-platform"],
)
def test_the_asgi_path_refuses_bad_requests_with_the_views_status_and_error(
    client: Client, study: Study, clock: Clock, query: str, headers: dict[str, str]
) -> None:
    enrolled(study, "tok-asgi-err")
    removed = enrolled(study, "tok-asgi-removed")
    ExtensionInstall.objects.filter(participant=removed).update(uninstalled_at=DAY0)

    status, response_headers, body = asgi_get(query, headers)

    assert (status, body) == through_django(client, query, headers)
    assert status in (400, 401)
    assert set(body["error"]) == {"code", "message", "field"}
    if status == 401:
        assert response_headers["www-authenticate"] == 'Bearer realm="extension"'
    assert not InFeedPrompt.objects.exists()


def test_other_methods_on_the_path_reach_django(study: Study, clock: Clock) -> None:
    enrolled(study, "tok-asgi-post")
    status, _, body = asgi_get("platform=reddit", bearer("tok-asgi-post"), method="POST")
    assert status == 405
    assert body["error"]["code"] == "method_not_allowed"
