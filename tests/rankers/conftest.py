"""Helpers for the ranking-path tests: enrolled participants, PRC requests, and an async client."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, ClassVar

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import AsyncClient, Client
from ranking_challenge.fake import fake_request
from ranking_challenge.response import RankingResponse

from participants.models import Arm, Participant, Study
from participants.roles import READER
from prc_site.lib import asyncdb
from rankers import slatelog
from rankers.management.commands.enroll_test_participant import create_test_participant
from rankers.plugins import RankContext, RankResult, SlateItem, register
from tests.factories import ArmFactory, StudyFactory


@register("reverse")
class ReverseRanker:
    name: ClassVar[str]
    attributes: ClassVar[tuple[str, ...]] = ()

    def rank(self, items: Sequence[SlateItem], context: RankContext) -> RankResult:
        return RankResult(ranked_ids=[i.id for i in reversed(items)])


@register("drop_first")
class DropFirstRanker:
    name: ClassVar[str]
    attributes: ClassVar[tuple[str, ...]] = ()

    def rank(self, items: Sequence[SlateItem], context: RankContext) -> RankResult:
        return RankResult(ranked_ids=[i.id for i in items[1:]])


@pytest.fixture(scope="session", autouse=True)
def _end_stray_connections(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """Pool threads keep their own connections (as in production); end them so the test database can be dropped."""
    yield
    with django_db_blocker.unblock():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'idle'"
            )
        connection.close()


@pytest.fixture(autouse=True)
async def _close_slate_writer() -> AsyncIterator[None]:
    """Each test has its own event loop; the slate writer's and the pool's connections must not outlive it.

    The writer's memory of stored content goes too: each test starts with an empty database, so content an
    earlier test stored (the same ids and text) must be written again.
    """
    yield
    slatelog._seen._keys.clear()
    await slatelog.close_writer()
    await asyncdb.close_loop_pool()


@pytest.fixture
def async_client() -> AsyncClient:
    return AsyncClient()


@pytest.fixture
async def study() -> Study:
    study: Study = await sync_to_async(StudyFactory)(rank_hold_ms=0)
    await sync_to_async(ArmFactory)(study=study, slug="control", ranker_key="control", is_control=True)
    return study


def _enrol(study: Study, ranker_key: str, past_baseline: bool, arm_fields: dict[str, Any]) -> tuple[Participant, str]:
    arm = Arm.objects.filter(study=study, ranker_key=ranker_key, **arm_fields).first()
    if arm is None:
        arm = ArmFactory(study=study, slug=ranker_key.replace("_", "-"), ranker_key=ranker_key, **arm_fields)
    return create_test_participant(arm=arm, past_baseline=past_baseline, is_test=False)  # the study's data


@pytest.fixture
def enrol(study: Study, settings: Any) -> Callable[..., Any]:
    """``await enrol("ranker_key", past_baseline=True, max_deleted=...)`` -> (participant, token).

    The ranker budget, scorer deadline and slate-write grace get a margin no loaded CI machine reaches, and no
    treatment is shed for a loop running behind: the tests that serve /rank are not about time, and those of a
    timeout set their own short one on the arm
    (``ranker_config={"budget_ms": ...}``) and make the slow side wait until released, not for a while.
    """
    settings.RANK_RANKER_BUDGET_MS = 60_000
    settings.RANK_WRITE_GRACE_S = 60.0
    settings.PRC_SCORER_DEADLINE_S = 30.0
    settings.PRC_SCORER_TIMEOUT_S = 30.0
    settings.RANK_SHED_LAG_MS = 0  # a loaded machine's event loop must not shed these tests' treatment

    async def make(
        ranker_key: str = "control", *, past_baseline: bool = True, **arm_fields: Any
    ) -> tuple[Participant, str]:
        return await sync_to_async(_enrol)(study, ranker_key, past_baseline, arm_fields)

    return make


def prc_request(user_id: str, *, n_posts: int = 10, n_comments: int = 0, platform: str = "reddit") -> dict[str, Any]:
    """A request from the PRC package's own generator, as the extension would send it."""
    body: dict[str, Any] = fake_request(n_posts=n_posts, n_comments=n_comments, platform=platform).model_dump(
        mode="json"
    )
    body["session"]["user_id"] = user_id
    return body


def item(item_id: str, text: str = "Some words about the news.", **fields: Any) -> dict[str, Any]:
    return {
        "id": item_id,
        "text": text,
        "author_name_hash": "a" * 64,
        "type": "post",
        "embedded_urls": [],
        "created_at": "2024-10-01 12:00:00",
        "engagements": {"upvote": 3, "downvote": 1, "comment": 2, "award": 0},
        **fields,
    }


def request_with(user_id: str, items: list[dict[str, Any]], platform: str = "reddit", **session: Any) -> dict[str, Any]:
    return {
        "session": {
            "session_id": "s-1",
            "user_id": user_id,
            "user_name_hash": "u" * 64,
            "platform": platform,
            "url": f"https://www.{platform}.com/",
            "current_time": "2024-10-01 12:00:00",
            **session,
        },
        "items": items,
    }


async def post_rank(client: AsyncClient, token: str, body: Any, **headers: str) -> Any:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return await client.post(
        "/rank",
        data=data,
        content_type=headers.pop("content_type", "application/json"),
        headers={"Authorization": f"Bearer {token}", **headers},
    )


def valid_response(response: Any) -> RankingResponse:
    assert response.status_code == 200, response.content
    return RankingResponse.model_validate_json(response.content)


def days_ago(days: float) -> dt.datetime:
    from django.utils import timezone

    return timezone.now() - dt.timedelta(days=days)


def reader_browser() -> Client:
    """A signed-in researcher with the reader role (the delivery page's audience)."""
    user = User.objects.create_user("reader", password="pw-for-tests-only", is_staff=True)
    user.groups.add(Group.objects.get_or_create(name=READER)[0])
    browser = Client()
    browser.force_login(user)
    return browser
