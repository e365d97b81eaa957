"""The LLM annotator against a loopback OpenAI-compatible server: valid, malformed and slow answers, retries,
idempotent batches, the daily budget, and the numbers the health page reads."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx2
import pytest
from django.utils import timezone

from rankers.content import annotating
from rankers.content.annotation import (
    ISSUES,
    QUALITY_FLAGS,
    InvalidReply,
    build_prompt_v1,
    build_prompt_v2,
    is_political,
    parse_reply,
)
from rankers.content.models import CandidatePost, ContentSource, LLMStatus, PostAnnotation
from rankers.models import ScorerUsage
from tests.rankers.content.conftest import make_source
from tests.rankers.content.fake_llm import FakeLLM, completion, fake_llm, valid_annotation

pytestmark = pytest.mark.django_db


def answer(post: str, attempt: int) -> tuple[int, bytes]:
    """Valid unless the post asks otherwise."""
    if post.startswith("garbage"):
        return 200, completion("Sure! The post is about politics.")
    if post.startswith("missing"):
        return 200, completion(json.dumps(valid_annotation(approval_democrat=...)))
    if post.startswith("flaky") and attempt == 1:
        return 200, completion(json.dumps(valid_annotation(political_orientation=9)))
    if post.startswith("down"):
        return 500, b'{"error": {"message": "overloaded"}}'
    return 200, completion(json.dumps(valid_annotation()))


@pytest.fixture
def source() -> ContentSource:
    return make_source()


def add_posts(source: ContentSource, *texts: str, seen: dt.datetime | None = None) -> list[CandidatePost]:
    return [
        CandidatePost.objects.create(
            source=source,
            platform=source.platform,
            post_id=f"p-{text}",
            url=f"https://news.example.org/{abs(hash(text))}",
            text=text,
            first_seen_at=seen or timezone.now(),
        )
        for text in texts
    ]


@pytest.fixture
def configured(settings: Any) -> Any:
    settings.PRC_ANNOTATION_LLM_MODEL = "fake-annotator"
    settings.PRC_ANNOTATION_LLM_TIMEOUT_S = 2.0
    settings.PRC_ANNOTATION_LLM_ATTEMPTS = 3
    settings.PRC_ANNOTATION_LLM_CONCURRENCY = 4
    settings.PRC_ANNOTATION_DAILY_BUDGET = 100.0
    settings.PRC_LLM_PRICE_PROMPT_PER_1K = 0.5  # 1,000 prompt tokens: 0.5
    settings.PRC_LLM_PRICE_COMPLETION_PER_1K = 2.5  # 200 completion tokens: 0.5
    return settings


@pytest.fixture
def server(configured: Any) -> Iterator[FakeLLM]:
    with fake_llm(answer) as (fake, url):
        configured.PRC_ANNOTATION_LLM_BASE_URL = url
        yield fake


def run_batch(**kwargs: Any) -> annotating.BatchResult:
    annotating.open_annotations()
    return annotating.annotate_llm_batch(**kwargs)


def test_a_valid_reply_is_stored_with_its_model_prompt_version_tokens_and_cost(
    server: FakeLLM, source: ContentSource
) -> None:
    [post] = add_posts(source, "The senator praised the climate bill from across the aisle.")

    result = run_batch()

    assert (result.annotated, result.failed) == (1, 0)
    row = PostAnnotation.objects.get(post=post)
    assert row.llm_status == LLMStatus.DONE
    assert row.quality == {flag: flag in {"has_enough_context", "is_political_social"} for flag in QUALITY_FLAGS}
    assert row.political_orientation == 5
    assert row.issue_opinions == {issue: 4 if issue == "climate" else None for issue in ISSUES}
    assert (row.ideologically_surprising, row.bridging, row.national_interest) == (True, True, True)
    assert (row.approval_republican, row.approval_democrat) == (4.0, 3.5)
    assert (row.llm_model, row.prompt_version) == ("fake-annotator", "prc-s3.3-s3.2-v2")
    assert (row.prompt_tokens, row.completion_tokens, row.cost) == (1000, 200, Decimal("1.000000"))
    assert row.annotated_at is not None
    usage = ScorerUsage.objects.get(backend="annotation:fake-annotator")
    assert (usage.calls, usage.failed_calls, usage.cost) == (1, 0, Decimal("1.000000"))
    sent = server.bodies[0]
    assert sent["model"] == "fake-annotator"
    assert sent["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize(
    ("text", "reason"),
    [("garbage reply", "not JSON"), ("missing field", "approval_democrat is missing"), ("down server", "500")],
)
def test_a_bad_answer_is_retried_then_recorded_as_failed_and_never_stored_as_an_annotation(
    server: FakeLLM, source: ContentSource, text: str, reason: str
) -> None:
    [post] = add_posts(source, text)

    result = run_batch()

    assert (result.annotated, result.failed) == (0, 1)
    assert server.requests[text] == 3
    row = PostAnnotation.objects.get(post=post)
    assert row.llm_status == LLMStatus.FAILED
    assert reason in row.llm_error
    assert "after 3 attempts" in row.llm_error
    assert row.quality is None
    assert row.political_orientation is None
    assert row.annotated_at is None
    assert row.llm_attempts == 3
    usage = ScorerUsage.objects.get(backend="annotation:fake-annotator")
    assert (usage.calls, usage.failed_calls) == (3, 3)


def test_an_answer_invalid_once_is_asked_again_and_the_valid_one_stored(server: FakeLLM, source: ContentSource) -> None:
    [post] = add_posts(source, "flaky answer")

    assert run_batch().annotated == 1

    assert server.requests["flaky answer"] == 2
    row = PostAnnotation.objects.get(post=post)
    assert (row.llm_status, row.llm_attempts, row.political_orientation) == (LLMStatus.DONE, 2, 5)
    assert row.prompt_tokens == 2000  # the invalid reply's tokens were paid for too


def test_a_slow_answer_times_out_and_is_retried(configured: Any, source: ContentSource) -> None:
    def slow_first(post: str, attempt: int) -> tuple[int, bytes]:
        if attempt == 1 or post.startswith("always slow"):
            fake.hold(5)
        return answer(post, attempt)

    configured.PRC_ANNOTATION_LLM_TIMEOUT_S = 0.3
    configured.PRC_ANNOTATION_LLM_ATTEMPTS = 2
    with fake_llm(slow_first) as (fake, url):
        configured.PRC_ANNOTATION_LLM_BASE_URL = url
        slow, stuck = add_posts(source, "slow once", "always slow")

        result = run_batch()

    assert (result.annotated, result.failed) == (1, 1)
    assert PostAnnotation.objects.get(post=slow).llm_status == LLMStatus.DONE
    failed = PostAnnotation.objects.get(post=stuck)
    assert failed.llm_status == LLMStatus.FAILED
    assert "Timeout" in failed.llm_error


def test_running_the_batch_twice_annotates_each_post_once(server: FakeLLM, source: ContentSource) -> None:
    add_posts(source, "first post", "second post", "garbage third")
    run_batch()
    before = list(PostAnnotation.objects.order_by("pk").values())

    again = run_batch()

    assert (again.annotated, again.failed) == (0, 0)
    assert list(PostAnnotation.objects.order_by("pk").values()) == before
    assert server.total == 1 + 1 + 3


def test_two_workers_never_claim_the_same_post_and_a_dead_workers_claim_expires(
    configured: Any, source: ContentSource
) -> None:
    configured.PRC_ANNOTATION_CLAIM_TIMEOUT_S = 600
    add_posts(source, "a", "b", "c")
    annotating.open_annotations()
    now = timezone.now()

    first = annotating.claim_for_llm(2, now)
    second = annotating.claim_for_llm(2, now)
    third = annotating.claim_for_llm(2, now)
    after_timeout = annotating.claim_for_llm(5, now + dt.timedelta(seconds=601))

    assert len(first) == 2
    assert len(second) == 1
    assert not set(first) & set(second)
    assert third == []
    assert sorted(after_timeout) == sorted(first + second)


def test_an_outcome_is_not_written_over_a_claim_that_passed_to_another_worker(
    server: FakeLLM, source: ContentSource
) -> None:
    [post] = add_posts(source, "contested")
    annotating.open_annotations()
    mine = timezone.now() - dt.timedelta(hours=1)
    annotating.claim_for_llm(1, mine)
    PostAnnotation.objects.filter(post=post).update(llm_claimed_at=timezone.now())  # another worker took it over
    annotator = annotating.build_annotator()
    outcome = annotator.annotate(post.pk, "contested", "twitter", annotating.Budget(10))

    assert not annotating.store_outcome(outcome, annotator, claimed_at=mine)
    assert PostAnnotation.objects.get(post=post).quality is None


def test_the_daily_budget_stops_annotation_with_a_visible_reason(
    server: FakeLLM, configured: Any, source: ContentSource
) -> None:
    configured.PRC_ANNOTATION_DAILY_BUDGET = 2.5  # each call costs 1.0
    configured.PRC_ANNOTATION_LLM_CONCURRENCY = 1
    add_posts(source, *[f"post {i}" for i in range(5)])

    result = run_batch()

    assert (result.annotated, result.returned) == (3, 2)
    assert "daily LLM budget of 2.50 is spent (3.00 today)" in result.stopped
    assert PostAnnotation.objects.waiting_for_llm().filter(llm_claimed_at__isnull=True).count() == 2
    later = run_batch()
    assert later.annotated == 0
    assert later.stopped == result.stopped
    assert server.total == 3
    assert annotating.annotation_stats(timezone.now() - dt.timedelta(days=1))["stopped"] == result.stopped


def test_only_recent_posts_of_active_sources_wait_for_the_llm(configured: Any, source: ContentSource) -> None:
    configured.PRC_ANNOTATION_MAX_AGE_H = 72
    [fresh] = add_posts(source, "fresh")
    add_posts(source, "old", seen=timezone.now() - dt.timedelta(hours=73))
    inactive = make_source(name="Gone", location="https://gone.example.org/feed.xml", active=False)
    add_posts(inactive, "inactive")

    assert annotating.open_annotations() == 1
    assert annotating.open_annotations() == 0
    assert list(PostAnnotation.objects.values_list("post", flat=True)) == [fresh.pk]


def test_failed_posts_can_be_put_back_in_the_queue(server: FakeLLM, source: ContentSource) -> None:
    add_posts(source, "garbage once")
    run_batch()

    assert annotating.retry_failed() == 1
    assert PostAnnotation.objects.waiting_for_llm().count() == 1


def test_annotation_stats_count_the_backlog_failures_and_cost_per_day(server: FakeLLM, source: ContentSource) -> None:
    add_posts(source, "good one", "good two", "garbage", "still waiting")
    annotating.open_annotations()
    annotating.annotate_llm_batch(limit=3)

    stats = annotating.annotation_stats(timezone.now() - dt.timedelta(days=1))

    assert stats["backlog"] == 1
    assert stats["in_flight"] == 0
    assert stats["oldest_waiting_since"] is not None
    assert (stats["annotated"], stats["failed"]) == (2, 1)
    assert stats["failed_share"] == pytest.approx(1 / 3)
    [today] = stats["days"]
    assert today["day"] == timezone.localdate()
    assert (today["calls"], today["failed_calls"]) == (5, 3)
    assert (today["prompt_tokens"], today["completion_tokens"]) == (5000, 1000)
    assert today["cost"] == pytest.approx(5.0)
    assert stats["spent_today"] == pytest.approx(5.0)
    assert stats["stopped"] == ""


def test_the_annotator_works_through_an_injected_http_client(configured: Any) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=completion(json.dumps(valid_annotation(political_orientation=None))))

    annotator = annotating.build_annotator(http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))
    outcome = annotator.annotate(1, "A recipe for bread.", "reddit", annotating.Budget(1.0))

    assert outcome.annotation is not None
    assert outcome.annotation.political_orientation is None
    assert outcome.cost == pytest.approx(1.0)


def test_the_prompt_asks_for_every_field_the_validation_requires() -> None:
    prompt = build_prompt_v1("Hello from the city council.", "facebook")

    for field in [*QUALITY_FLAGS, "is_ideologically_surprising", "is_bridging", "political_orientation"]:
        assert f'"{field}"' in prompt
    for field in ["approval_republican", "approval_democrat", "national_interest"]:
        assert f'"{field}"' in prompt
    for issue in ISSUES:
        assert f'"opinion_{issue}"' in prompt
    assert "a post from Facebook" in prompt
    assert "1 - Extremely liberal" in prompt
    assert prompt.endswith("```\nHello from the city council.\n```")


def test_prompt_version_2_asks_each_quality_flag_as_a_probability_and_the_rest_as_before() -> None:
    prompt = build_prompt_v2("Hello from the city council.", "reddit")

    for flag in QUALITY_FLAGS:
        assert f'"{flag}": <a number from 0 to 1: the probability that ' in prompt
    assert '"is_niche": <a number from 0 to 1: the probability that the post is very niche, lacks' in prompt
    assert '"is_bridging": <true if the post promotes trust' in prompt  # not a quality filter: still true/false
    assert "true if" not in prompt.split('"is_niche"')[1].split('"is_bridging"')[0]
    assert prompt.replace("a number from 0 to 1: the probability that", "true if").count("true if") == (
        build_prompt_v1("Hello from the city council.", "reddit").count("true if")
    )  # only the wording of the flags changed


def test_quality_flags_are_stored_as_probabilities_and_true_false_answers_as_one_and_zero() -> None:
    probabilities = parse_reply(json.dumps(valid_annotation(is_outrage=0.7, is_niche=0, has_enough_context=0.9)))
    assert (probabilities.quality["is_outrage"], probabilities.quality["is_niche"]) == (0.7, 0.0)
    assert probabilities.quality["has_enough_context"] == 0.9
    old_style = parse_reply(json.dumps(valid_annotation(is_outrage=True)))
    assert (old_style.quality["is_outrage"], old_style.quality["is_nsfw"]) == (1.0, 0.0)


@pytest.mark.parametrize(
    ("quality", "political"),
    [({"is_political_social": 0.5}, True), ({"is_political_social": 0.49}, False),
     ({"is_political_social": True}, True), ({"is_political_social": False}, False), ({}, False), (None, False)],
)  # fmt: skip
def test_a_post_is_political_from_a_probability_of_one_half(quality: dict[str, Any] | None, political: bool) -> None:
    assert is_political(quality) is political


def test_a_fenced_valid_reply_is_accepted() -> None:
    parsed = parse_reply("```json\n" + json.dumps(valid_annotation()) + "\n```")
    assert parsed.approval_democrat == 3.5


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (None, "empty reply"),
        ("[1, 2]", "a JSON list"),
        (json.dumps(valid_annotation(political_orientation=9)), "political_orientation is 9, outside 1..7"),
        (json.dumps(valid_annotation(political_orientation="4")), "political_orientation is not a whole number"),
        (json.dumps(valid_annotation(political_orientation=4.5)), "political_orientation is not a whole number"),
        (json.dumps(valid_annotation(political_orientation=...)), "political_orientation is missing"),
        (json.dumps(valid_annotation(opinion_israel=6)), "opinion_israel is 6, outside 1..5"),
        (json.dumps(valid_annotation(opinion_racism=...)), "opinion_racism is missing"),
        (json.dumps(valid_annotation(is_nsfw="no")), "is_nsfw is not a probability or true/false"),
        (json.dumps(valid_annotation(is_niche=1.5)), "is_niche is 1.5, outside 0..1"),
        (json.dumps(valid_annotation(is_niche=-0.1)), r"is_niche is -0.1, outside 0..1"),
        (json.dumps(valid_annotation(is_bridging=0.5)), "is_bridging is not true/false"),
        (json.dumps(valid_annotation(is_outrage=...)), "is_outrage is missing"),
        (json.dumps(valid_annotation(approval_republican=0)), "approval_republican is 0, outside 1..5"),
        (json.dumps(valid_annotation(approval_democrat=True)), "approval_democrat is missing or not a number"),
        (json.dumps(valid_annotation(national_interest=None)), "national_interest is not true/false"),
    ],
)
def test_a_reply_with_a_missing_or_wrong_field_is_invalid(reply: str | None, reason: str) -> None:
    with pytest.raises(InvalidReply, match=reason):
        parse_reply(reply)
