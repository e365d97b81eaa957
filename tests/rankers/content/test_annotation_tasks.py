"""The annotation tasks and command: the beat entry, routing to the scorer workers, and running them twice."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from rankers.content import tasks
from rankers.content.models import CandidatePost, ContentSource, LLMStatus, PostAnnotation
from tests.rankers.content.conftest import make_source
from tests.rankers.content.fake_llm import FakeLLM, fake_llm
from tests.rankers.content.test_annotation import answer

pytestmark = pytest.mark.django_db


@pytest.fixture
def server(settings: Any) -> Iterator[FakeLLM]:
    settings.PRC_ANNOTATION_LLM_MODEL = "fake-annotator"
    settings.PRC_ANNOTATION_BATCH_SIZE = 2
    settings.PRC_LLM_PRICE_PROMPT_PER_1K = 1.0
    with fake_llm(answer) as (fake, url):
        settings.PRC_ANNOTATION_LLM_BASE_URL = url
        yield fake


@pytest.fixture
def posts() -> list[CandidatePost]:
    source: ContentSource = make_source()
    texts = ["one post", "two posts", "garbage post", "four posts", "five posts"]
    return [
        CandidatePost.objects.create(
            source=source, platform="twitter", post_id=text, url=f"https://e.org/{i}", text=text
        )
        for i, text in enumerate(texts)
    ]


def states() -> list[tuple[Any, ...]]:
    return list(
        PostAnnotation.objects.order_by("pk").values_list(
            "llm_status", "political_orientation", "llm_attempts", "classifier_version", "toxicity"
        )
    )


def test_annotation_runs_on_a_schedule_and_on_the_scorer_workers() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["rankers.content.annotate_new_posts"]
    assert entry["task"] == tasks.annotate_new_posts.name
    for task in (tasks.annotate_llm_batch, tasks.classify_posts):
        assert settings.CELERY_TASK_ROUTES[task.name] == {"queue": settings.PRC_SCORER_QUEUE}
    assert tasks.annotate_llm_batch.rate_limit == settings.PRC_ANNOTATION_RATE_LIMIT


def test_the_beat_task_annotates_and_classifies_new_posts_and_a_second_run_changes_nothing(
    server: FakeLLM, posts: list[CandidatePost]
) -> None:
    first = tasks.annotate_new_posts.delay().get()

    assert first == {"opened": 5, "llm_batches": 3, "classify_batches": 3, "stopped": ""}
    assert PostAnnotation.objects.annotated().count() == 4
    assert PostAnnotation.objects.failed().count() == 1
    assert PostAnnotation.objects.classified().count() == 5
    before, calls = states(), server.total

    second = tasks.annotate_new_posts.delay().get()

    assert second == {"opened": 0, "llm_batches": 0, "classify_batches": 0, "stopped": ""}
    assert states() == before
    assert server.total == calls


def test_a_batch_task_run_twice_annotates_each_post_once(server: FakeLLM, posts: list[CandidatePost]) -> None:
    call_command("annotate_posts", "--classify", stdout=StringIO())  # opens the rows, no LLM

    assert tasks.annotate_llm_batch.delay().get()["annotated"] == 2
    assert tasks.annotate_llm_batch.delay().get()["annotated"] == 1
    assert server.total == 2 + 1 + 3  # newest first: five and four, then two and garbage (3 tries)


def test_the_command_annotates_everything_waiting_and_says_so(server: FakeLLM, posts: list[CandidatePost]) -> None:
    output = StringIO()

    call_command("annotate_posts", stdout=output)

    assert "5 new posts wait for annotation" in output.getvalue()
    assert "LLM: annotated 4, failed 1" in output.getvalue()
    assert "classified 5 posts" in output.getvalue()
    assert PostAnnotation.objects.filter(llm_status=LLMStatus.PENDING).count() == 0


def test_the_command_stops_with_the_reason_when_the_budget_is_spent(
    server: FakeLLM, posts: list[CandidatePost], settings: Any
) -> None:
    settings.PRC_ANNOTATION_DAILY_BUDGET = 1.5  # each call: 1,000 prompt tokens at 1.0 per 1k

    with pytest.raises(CommandError, match=r"daily LLM budget of 1\.50 is spent"):
        call_command("annotate_posts", "--llm", stdout=StringIO())

    assert PostAnnotation.objects.annotated().count() == 2
