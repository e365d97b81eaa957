"""The demo's inventory (``seed_demo_content``, which ``seed_demo`` runs before the demo's rehearsal and ``personalize``
after it): fresh pools and queues for every inserting arm, made without the network or a model, rankers that insert
from them, and the rehearsal's slates that did."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from participants.models import Participant, Study
from participants.paper import PLATFORMS
from rankers.content import dashboard
from rankers.content.annotating import annotation_stats
from rankers.content.demo import DEMO_MODEL, VECTOR_MODEL
from rankers.content.inventory import candidates_for, pool_from_rows
from rankers.content.models import (
    INSERTING_ARMS,
    CandidatePool,
    CandidatePost,
    ConnectorRun,
    ParticipantQueue,
    PostAnnotation,
    TextEmbedding,
)
from rankers.models import Slate
from rankers.plugins import RankContext, SlateItem, get_ranker
from rankers.scoring import attributes as A
from tests.demo import seed_small_demo

pytestmark = pytest.mark.django_db(transaction=True)  # the demo's rehearsal commits its slates

MAIN_FEEDS = {
    "reddit": "https://www.reddit.com/",
    "twitter": "https://x.com/home",
    "facebook": "https://www.facebook.com/",
}


@pytest.fixture
def demo() -> Study:
    seed_small_demo()
    return Study.objects.get(slug="prc-demo")


def snapshot() -> dict[str, object]:
    return {
        "posts": CandidatePost.objects.count(),
        "annotations": PostAnnotation.objects.count(),
        "runs": ConnectorRun.objects.count(),
        "pools": {(p.ranker_key, p.platform): (p.candidates, p.default_ids) for p in CandidatePool.objects.all()},
        "queues": {(q.participant_id, q.ranker_key, q.platform): q.candidate_ids
                   for q in ParticipantQueue.objects.all()},
    }  # fmt: skip


def test_the_demo_gets_fresh_pools_and_queues_its_inserting_arms_insert_from_and_a_rerun_changes_nothing(
    demo: Study,
) -> None:
    out = io.StringIO()
    call_command("seed_demo_content", stdout=out)

    assert "Demo content: 18 sources, 0 new posts" in out.getvalue()  # seed_demo stored this slot's posts
    now = timezone.now()
    rows = dashboard.arm_rows(now=now, refresh=dt.timedelta(seconds=settings.PRC_QUEUE_REFRESH_S))
    assert {(r.ranker_key, r.platform) for r in rows} == {(k, p) for k in INSERTING_ARMS for p in PLATFORMS}
    for row in rows:
        assert row.stale is None, (row.ranker_key, row.platform, row.stale)
        assert row.fresh_candidates >= 20
    # The rehearsal's baseline answers personalize Challenging Stereotypes; its served posts personalize Add News.
    assert sum(r.personalized or 0 for r in rows if r.ranker_key == "challenging_stereotypes") > 0
    assert sum(r.personalized or 0 for r in rows if r.ranker_key == "add_news") > 0
    sources = [r for r in dashboard.source_rows(now=now, limit=dt.timedelta(hours=24)) if r.connector == "dataset"]
    assert len(sources) == 18
    assert all(r.stale is None for r in sources)
    # Stored as annotators store them, so nothing waits for an LLM, and no model made a vector.
    assert annotation_stats(now - dt.timedelta(days=1))["backlog"] == 0
    assert set(PostAnnotation.objects.values_list("llm_model", flat=True)) == {DEMO_MODEL}
    assert set(TextEmbedding.objects.values_list("model", flat=True)) == {VECTOR_MODEL}

    assert_the_arms_insert(demo, now)
    # The rehearsal's inserting arms inserted from the inventory seed_demo stored before it.
    for ranker_key in INSERTING_ARMS:
        treated = Slate.objects.filter(study_id=demo.pk, effective_arm=ranker_key, intervention_on=True)
        assert treated.filter(n_added__gt=0).exists(), ranker_key

    first = snapshot()
    call_command("seed_demo_content", stdout=io.StringIO())
    assert snapshot() == first


def assert_the_arms_insert(demo: Study, now: dt.datetime) -> None:
    """Each inserting ranker, on each platform, inserts pool posts into a demo participant's main feed."""
    for ranker_key in INSERTING_ARMS:
        participant = Participant.objects.filter(study=demo, assignment__arm__ranker_key=ranker_key).first()
        assert participant is not None
        for platform in PLATFORMS:
            stored = CandidatePool.objects.get(ranker_key=ranker_key, platform=platform)
            pool = pool_from_rows(
                stored.candidates, stored.default_ids, newest_post_at=stored.newest_post_at, built_at=stored.built_at
            )
            queue = ParticipantQueue.objects.filter(
                participant_id=participant.public_id, ranker_key=ranker_key, platform=platform
            ).first()
            items = [SlateItem(f"feed-{i}", f"A post on the home feed, number {i}.") for i in range(50)]
            context = RankContext(
                platform=platform, content_type="post", user_id=participant.public_id, now=now,
                scores={item.id: {A.CIVIC: (i % 10) / 10} for i, item in enumerate(items)},
                candidates=candidates_for(pool, queue.candidate_ids if queue else None),
                inventory_newest_at=stored.newest_post_at, page_url=MAIN_FEEDS[platform],
            )  # fmt: skip

            result = get_ranker(ranker_key).rank(items, context)

            urls = {row["url"] for row in stored.candidates}
            assert len(result.new_items) >= 3, (ranker_key, platform)
            assert {str(item.url) for item in result.new_items} <= urls
