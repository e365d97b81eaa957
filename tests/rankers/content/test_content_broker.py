"""The annotation and queue-refresh tasks on a real Celery worker through the real (embedded) Redis broker: the rows
they store, and that sending them twice stores the same rows."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from django.utils import timezone

from participants.models import Participant
from rankers.content import annotating, tasks
from rankers.content.models import CandidatePool, CandidatePost, LLMStatus, ParticipantQueue, PostAnnotation
from rankers.content.synthetic import NewPost, store_embeddings, store_posts
from rankers.management.commands.enroll_test_participant import create_test_participant
from rankers.models import ContentItem, ScorerUsage, Slate, text_hash
from tests.factories import ArmFactory, StudyFactory
from tests.rankers.content.conftest import make_source
from tests.rankers.content.fake_llm import FakeLLM, fake_llm
from tests.rankers.content.test_annotation import answer

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]

# The worker reads its settings from the environment: one refresh slot for the whole test (so its random draws
# repeat), and no rate limit on LLM batches (a second batch must not wait behind the one before).
WORKER_ENV = {"PRC_QUEUE_REFRESH_S": "1000000000", "PRC_ANNOTATION_RATE_LIMIT": ""}


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"the worker did not {what}"
        time.sleep(0.2)


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[tuple[str, FakeLLM]]:
    """A real worker (its queue's name) whose annotator asks a fake LLM on loopback at 1.0 per 1,000 prompt tokens."""
    with fake_llm(answer) as (fake, url):
        env = {**WORKER_ENV, "PRC_ANNOTATION_LLM_BASE_URL": url, "PRC_ANNOTATION_LLM_MODEL": "fake-annotator",
               "PRC_LLM_PRICE_PROMPT_PER_1K": "1.0"}  # fmt: skip
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield request.getfixturevalue("celery_worker_queue"), fake


def annotations() -> list[tuple[Any, ...]]:
    return list(
        PostAnnotation.objects.order_by("pk").values_list(
            "post__text", "llm_status", "political_orientation", "issue_opinions", "llm_model", "llm_attempts",
            "prompt_tokens", "cost", "annotated_at",
        )
    )  # fmt: skip


def test_a_real_worker_annotates_waiting_posts_and_a_second_batch_changes_nothing(
    worker: tuple[str, FakeLLM],
) -> None:
    queue, fake = worker
    source = make_source()
    for i, text in enumerate(["one post", "two posts", "garbage post"]):
        CandidatePost.objects.create(
            source=source, platform="twitter", post_id=text, url=f"https://e.org/{i}", text=text
        )
    assert annotating.open_annotations() == 3

    tasks.annotate_llm_batch.apply_async(queue=queue)
    wait_for(lambda: not PostAnnotation.objects.waiting_for_llm().exists(), "annotate the batch")

    rows = {row[0]: row[1:] for row in annotations()}
    for text in ("one post", "two posts"):
        status, orientation, opinions, model, attempts, tokens, cost, annotated_at = rows[text]
        assert (status, orientation, opinions["climate"], model) == (LLMStatus.DONE, 5, 4, "fake-annotator")
        assert (attempts, tokens, float(cost)) == (1, 1000, 1.0)
        assert annotated_at is not None
    assert rows["garbage post"][:2] == (LLMStatus.FAILED, None)  # three invalid replies, never stored
    usage = ScorerUsage.objects.get(backend="annotation:fake-annotator")
    assert (usage.calls, usage.failed_calls, float(usage.cost)) == (5, 3, 5.0)
    before, calls = annotations(), fake.total

    tasks.annotate_llm_batch.apply_async(queue=queue)
    # The solo worker runs its queue in order: once this later task's pools exist, the second batch has run.
    tasks.refresh_queues.apply_async(args=["facebook"], queue=queue)
    wait_for(lambda: CandidatePool.objects.filter(platform="facebook").count() == 3, "run the second batch")

    assert annotations() == before
    assert fake.total == calls
    assert ScorerUsage.objects.get(backend="annotation:fake-annotator").calls == 5


def unit(*components: float) -> np.ndarray:
    vector = np.zeros(8, dtype=np.float32)
    vector[: len(components)] = components
    return vector / np.linalg.norm(vector)


def queues_and_pools() -> tuple[dict[tuple[str, str], list[str]], dict[tuple[str, str], tuple[Any, ...]]]:
    queues = {
        (q.participant_id, q.ranker_key): (q.candidate_ids, q.personalized) for q in ParticipantQueue.objects.all()
    }
    pools = {(p.ranker_key, p.platform): (p.candidates, p.default_ids, p.size) for p in CandidatePool.objects.all()}
    return queues, pools  # type: ignore[return-value]


def test_a_real_worker_refreshes_pools_and_queues_and_a_second_refresh_stores_the_same_rows(
    worker: tuple[str, FakeLLM],
) -> None:
    queue, _ = worker
    study = StudyFactory()
    arms = {key: ArmFactory(study=study, slug=key.replace("_", "-"), ranker_key=key)
            for key in ("add_news", "challenging_stereotypes")}  # fmt: skip
    source = make_source(platform="reddit", lean="centre", arms=["add_news", "challenging_stereotypes"])
    good = {flag: False for flag in ("is_nsfw", "is_niche", "is_frivolous", "is_outrage", "is_conspiratorial",
                                     "is_pessimistic", "is_sarcastic")}  # fmt: skip
    now = timezone.now()
    opinions = [(5, 5), (4, 3), (3, 1)] * 4  # stored orientation (1 = liberal; all inside 2.1-5.9), Trump
    store_posts(source, [
        NewPost(post_id=f"t3_{i}", url=f"https://news.example.org/{i}", title=f"Story {i}",
                text=f"The text of story number {i}.", created_at=now - dt.timedelta(hours=i),
                annotation={"political_orientation": o, "issue_opinions": {"trump": t}, "quality": good,
                            "ideologically_surprising": i == 5, "llm_model": "m", "prompt_version": "v"},
                vector=unit(1.0, 0.1 * i))
        for i, (o, t) in enumerate(opinions)
    ], model="test")  # fmt: skip
    reader, _ = create_test_participant(arm=arms["add_news"], past_baseline=True, is_test=False)
    served = {f"A long enough served post, number {i}.": unit(1.0, 0.1 * i) for i in range(30)}
    for i, text in enumerate(served):
        ContentItem.objects.create(platform="reddit", item_id=f"seen{i}", text_hash=text_hash(text), text=text)
    store_embeddings({text_hash(text): vector for text, vector in served.items()}, model="test")
    Slate.objects.create(
        study_id=study.pk, served_at=now - dt.timedelta(hours=1), participant_id=reader.public_id, arm="add-news",
        effective_arm="add-news", ranker_key="add_news", platform="reddit", content_type="post",
        original_ids=[f"seen{i}" for i in range(30)], original_hashes=[text_hash(t) for t in served], returned_ids=[],
        served_ms=500.0,
    )  # fmt: skip
    conservative, _ = create_test_participant(arm=arms["challenging_stereotypes"], past_baseline=True, is_test=False)
    Participant.objects.filter(pk=conservative.pk).update(baseline_issue_positions={"ideology": 3, "trump": 5})

    tasks.refresh_queues.apply_async(args=["reddit"], queue=queue)
    wait_for(lambda: ParticipantQueue.objects.count() == 2, "refresh the queues")

    queues, pools = queues_and_pools()
    assert {key: pool[2] for key, pool in pools.items()} == {
        ("add_news", "reddit"): 12, ("challenging_stereotypes", "reddit"): 12, ("diverse_approval", "reddit"): 0,
    }  # fmt: skip
    news, personalized = queues[(reader.public_id, "add_news")]
    assert personalized
    assert 0 < len(news) <= 12
    stereotypes, personalized = queues[(conservative.public_id, "challenging_stereotypes")]
    assert personalized
    assert stereotypes[0] == f"prc-{CandidatePost.objects.get(post_id='t3_5').pk}"  # the surprising post first
    built = ParticipantQueue.objects.get(participant_id=reader.public_id).built_at

    tasks.refresh_queues.apply_async(args=["reddit"], queue=queue)
    wait_for(
        lambda: ParticipantQueue.objects.get(participant_id=reader.public_id).built_at > built, "refresh them again"
    )
    wait_for(lambda: not ParticipantQueue.objects.filter(built_at=built).exists(), "finish the second refresh")

    assert queues_and_pools() == (queues, pools)
