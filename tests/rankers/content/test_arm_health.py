"""Health per inserting arm: the staleness rule, pool freshness, queue coverage, exposure by lean and the
annotation backlog, as rows and on the content page."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from participants.models import Participant
from participants.roles import READER, create_roles
from rankers.content.dashboard import arm_rows, exposure_rows, fresh_candidates
from rankers.content.freshness import arm_stale_reason
from rankers.content.inventory import candidate_row
from rankers.content.models import CandidatePool, CandidatePost, LLMStatus, ParticipantQueue, PostAnnotation
from rankers.management.commands.enroll_test_participant import create_test_participant
from rankers.models import ScorerUsage, Slate
from rankers.plugins.base import Candidate
from tests.factories import ArmFactory, StudyFactory, login
from tests.rankers.content.conftest import make_source

NOW = dt.datetime(2026, 12, 3, 12, tzinfo=dt.UTC)
REFRESH = dt.timedelta(hours=3)


def ago(hours: float, now: dt.datetime = NOW) -> dt.datetime:
    return now - dt.timedelta(hours=hours)


@pytest.mark.parametrize(
    ("built", "fresh", "participants", "queues", "reason"),
    [
        (ago(1), 10, 4, 4, None),
        (None, 0, 3, 0, "no pool yet (manage.py refresh_queues)"),
        (None, 0, 0, 0, None),  # not in use
        (ago(7), 10, 4, 4, "pool not rebuilt for 7 h"),
        (ago(1), 0, 4, 4, "no fresh candidates: the arm inserts nothing"),
        (ago(1), 10, 4, 1, "only 1 of 4 participants have a fresh queue"),
        (ago(1), 10, 4, None, None),  # a global pool: no queues to cover
        (ago(6), 10, 0, 0, None),
    ],
)
def test_an_arms_pool_is_stale_when_not_rebuilt_empty_of_fresh_posts_or_queues_are_missing(
    built: dt.datetime | None, fresh: int, participants: int, queues: int | None, reason: str | None
) -> None:
    stale = arm_stale_reason(
        pool_built_at=built, fresh_candidates=fresh, participants=participants, fresh_queues=queues,
        now=NOW, refresh=REFRESH,
    )  # fmt: skip
    assert stale == reason


def candidate(number: int, hours_old: float, now: dt.datetime = NOW) -> Candidate:
    return Candidate(
        id=f"prc-{number}", url=f"https://n.example.org/{number}", source_id=1, posted_at=ago(hours_old, now)
    )


def test_fresh_candidates_follow_each_arms_own_age_limit() -> None:
    rows = [candidate_row(candidate(i, hours)) for i, hours in enumerate([1, 23, 30, 60, 80])]
    assert fresh_candidates("diverse_approval", rows, newest=ago(1), now=NOW) == 2  # 24 h
    assert fresh_candidates("challenging_stereotypes", rows, newest=ago(1), now=NOW) == 4  # 72 h
    assert fresh_candidates("add_news", rows, newest=ago(1), now=NOW) == 3  # 48 h of the newest post
    assert fresh_candidates("add_news", rows, newest=ago(40), now=NOW) == 5  # scraper stopped: 48 h before its last
    assert fresh_candidates("add_news", rows, newest=None, now=NOW) == 0


@pytest.fixture
def arms_with_queues() -> dict[str, Participant]:
    now = timezone.now()
    study = StudyFactory()
    arm = ArmFactory(study=study, slug="add-news", ranker_key="add_news")
    participants = {name: create_test_participant(arm=arm, past_baseline=True, is_test=False)[0] for name in "abc"}
    CandidatePool.objects.create(
        ranker_key="add_news", platform="reddit", built_at=ago(1, now), newest_post_at=ago(2, now),
        candidates=[candidate_row(candidate(i, 2 + i, now)) for i in range(5)], size=5,
    )  # fmt: skip
    CandidatePool.objects.create(
        ranker_key="diverse_approval", platform="reddit", built_at=ago(30, now), candidates=[], size=0
    )
    ParticipantQueue.objects.create(participant_id=participants["a"].public_id, ranker_key="add_news",
                                    platform="reddit", built_at=ago(1, now), candidate_ids=["prc-1"])  # fmt: skip
    ParticipantQueue.objects.create(participant_id=participants["b"].public_id, ranker_key="add_news",
                                    platform="reddit", built_at=ago(10, now), personalized=False)  # fmt: skip
    return participants


@pytest.mark.django_db
def test_arm_rows_count_pools_fresh_candidates_and_queue_coverage(arms_with_queues: dict[str, Participant]) -> None:
    rows = {(r.ranker_key, r.platform): r for r in arm_rows(now=timezone.now(), refresh=REFRESH)}
    news = rows[("add_news", "reddit")]
    assert (news.pool_size, news.fresh_candidates, news.participants) == (5, 5, 3)
    assert (news.fresh_queues, news.personalized) == (1, 1)  # b's queue is older than two refreshes
    assert news.coverage == pytest.approx(1 / 3)
    assert news.stale == "only 1 of 3 participants have a fresh queue"
    assert rows[("diverse_approval", "reddit")].stale == "pool not rebuilt for 30 h"
    assert rows[("diverse_approval", "reddit")].fresh_queues is None
    assert rows[("add_news", "twitter")].stale == "no pool yet (manage.py refresh_queues)"
    assert rows[("challenging_stereotypes", "twitter")].stale is None  # nobody in that arm, no pool
    assert len(rows) == 9


@pytest.mark.django_db
def test_exposure_counts_inserted_posts_by_arm_and_lean_from_the_slate_log() -> None:
    def slate(ranker_key: str, inserted: list[dict[str, object]], *, on: bool = True) -> None:
        Slate.objects.create(
            study_id=1, served_at=timezone.now(), participant_id="p1", arm=ranker_key, effective_arm=ranker_key,
            ranker_key=ranker_key, platform="reddit", content_type="post", served_ms=500.0, intervention_on=on,
            inserted=inserted,
        )  # fmt: skip

    slate("add_news", [{"id": "prc-1", "lean": "left"}, {"id": "prc-2", "lean": "centre"}])
    slate("add_news", [{"id": "prc-3", "lean": "left"}])
    slate("diverse_approval", [{"id": "prc-4", "lean": ""}])
    slate("add_news", [{"id": "prc-5", "lean": "right"}], on=False)
    rows = {(r.ranker_key, r.lean): r.inserted for r in exposure_rows(since=timezone.now() - dt.timedelta(days=1))}
    assert rows == {("add_news", "centre"): 1, ("add_news", "left"): 2, ("diverse_approval", ""): 1}


@pytest.mark.django_db
def test_the_content_page_shows_the_annotation_backlog_and_each_days_llm_cost() -> None:
    source = make_source(name="outlet")
    posts = [
        CandidatePost.objects.create(
            source=source, platform=source.platform, post_id=str(i), url=f"https://o.example.org/{i}"
        )
        for i in range(3)
    ]
    PostAnnotation.objects.create(post=posts[0], llm_status=LLMStatus.PENDING)
    PostAnnotation.objects.create(post=posts[1], llm_status=LLMStatus.DONE, annotated_at=timezone.now())
    PostAnnotation.objects.create(post=posts[2], llm_status=LLMStatus.FAILED, llm_failed_at=timezone.now())
    ScorerUsage.objects.create(
        day=timezone.localdate(), backend="annotation:gpt-test", calls=4, failed_calls=1, prompt_tokens=900,
        completion_tokens=120, cost=Decimal("0.0123"),
    )  # fmt: skip
    create_roles()
    page = login("annotation-reader", READER).get("/research/ranking/content/").content.decode()
    assert "1 post waiting for the LLM" in page
    assert "1 annotated and 1 failed" in page
    assert "(failure rate 50 %)" in page
    assert f'<tr data-day="{timezone.localdate():%Y-%m-%d}">' in page
    assert '<td data-col="cost">0.0123</td>' in page


@pytest.mark.django_db
def test_the_content_page_lists_each_arm_and_warns_about_its_stale_pools(
    arms_with_queues: dict[str, Participant],
) -> None:
    create_roles()
    page = login("arm-health-reader", READER).get("/research/ranking/content/").content.decode()
    assert 'id="arm-warning" class="warning" role="alert"' in page
    assert "diverse_approval on reddit: pool not rebuilt for 30 h" in page
    assert 'data-arm="add_news" data-platform="reddit" class="stale"' in page
