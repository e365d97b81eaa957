"""Partial scoring within the hold: a scorer worker publishes each chunk's scores as it finishes them, and a slate's
texts are split into jobs that several scorer processes take. The worker runs in this process here (real Redis,
real database); tests/rankers/test_scoring_service.py runs it as real scorer processes behind /rank."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from rankers.models import TextScore
from rankers.scoring import configure, identity, stats, store, worker
from rankers.scoring.backends.base import Scores
from rankers.scoring.cache import text_digest
from tests.rankers.fake_scorers import ClockedModel, SlowPerCharacter, SlowPerText

pytestmark = pytest.mark.django_db

ATTRIBUTES = ("TOXICITY",)


@pytest.fixture
def slow_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlowPerText]:
    """A model at 30 ms a text, whose pace this worker process already knows (as after its warm-up)."""
    model = SlowPerText(seconds_per_text=0.03)
    model.score(["warm up"], ATTRIBUTES)  # loads the word lists, as a scorer process does before its first batch
    model.calls.clear()
    configure(backend=model)
    monkeypatch.setattr(worker, "pace", worker.Pace())
    for size in worker.WARM_UP_SIZES:
        worker.pace.observe(0.03 * size, size)
    yield model
    configure()


def enqueue(*jobs: store.Job) -> None:
    async def push() -> None:
        admitted, _, _ = await store.aenqueue(*jobs)
        assert admitted
        await store.close_async_client()

    asyncio.run(push())


def texts(n: int, tag: str) -> tuple[str, ...]:
    return tuple(f"post {tag} number {i}, written for this test" for i in range(n))


def done_count(slate: str) -> int:
    return int(store.client().get(store.done_key(slate)) or 0)


def test_a_chunk_takes_two_thirds_of_the_time_left_at_the_recent_pace_and_at_least_one_text() -> None:
    assert worker.chunk_size(100, 0.45, 0.0, 0.0099) == 30
    assert worker.chunk_size(100, 0.45, 0.1, 0.0099) == 20  # a fixed cost per call leaves room for fewer
    assert worker.chunk_size(10, 0.35, 0.17, 0.002) == 10  # ... but not for none when it fits
    assert worker.chunk_size(100, 0.3, 0.25, 0.001) == 49  # the call alone takes the share: fill the time left
    assert worker.chunk_size(100, 0.45, 0.0, 0.001) == 100  # everything fits
    assert worker.chunk_size(5, 0.45, 0.0, 0.01) == 5
    assert worker.chunk_size(100, 0.01, 0.0, 0.5) == 1
    assert worker.chunk_size(100, None, 0.0, 0.01) == 100  # no deadline (rescoring): one call
    assert worker.chunk_size(100, 0.45, 0.0, 0.0) == 100  # no pace known yet


def test_the_pace_tells_a_fixed_cost_per_call_from_a_cost_per_text() -> None:
    per_call, per_text = worker.Pace(), worker.Pace()
    for n in (40, 10, 1, 25, 5):
        per_call.observe(0.15, n)  # 150 ms whatever the size (a remote call, a sleep)
        per_text.observe(0.01 + 0.03 * n, n)

    assert per_call.overhead == pytest.approx(0.15)
    assert per_call.per_text == pytest.approx(0.0, abs=1e-9)
    assert (per_text.overhead, per_text.per_text) == (pytest.approx(0.01), pytest.approx(0.03))
    one_size = worker.Pace()
    one_size.observe(0.3, 10)
    one_size.observe(0.3, 10)
    assert (one_size.overhead, one_size.per_text) == (0.0, pytest.approx(0.03))


def test_a_scorer_process_learns_its_pace_from_a_warm_up_of_two_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "pace", worker.Pace())
    model = ClockedModel(overhead=0.004, per_text=0.02)

    worker.learn_pace(model, clock=model.clock)

    assert model.calls == list(worker.WARM_UP_SIZES)
    assert worker.pace.per_text == pytest.approx(0.02)
    assert worker.pace.overhead == pytest.approx(0.004)


def test_a_slates_texts_are_split_into_even_jobs_of_at_most_the_configured_size() -> None:
    letters = list("abcdefghijk")
    assert store.split_texts(letters, 4) == [("a", "b", "c", "d"), ("e", "f", "g", "h"), ("i", "j", "k")]
    assert [len(part) for part in store.split_texts(list(range(50)), 25)] == [25, 25]
    assert [len(part) for part in store.split_texts(list(range(51)), 25)] == [17, 17, 17]
    assert store.split_texts(letters, 0) == [tuple(letters)]
    assert store.split_texts([], 25) == []


def test_a_worker_scores_what_fits_before_the_deadline_and_publishes_it_as_it_goes(
    slow_model: SlowPerText, monkeypatch: pytest.MonkeyPatch
) -> None:
    """30 texts at 30 ms each need 0.9 s; the deadline is 0.3 s away. Scored in one call, nothing would be ready at
    the deadline; in chunks, each chunk's scores are in Redis before the next chunk starts, no chunk starts after
    one has ended past the deadline, and the rest is left unscored and counted. (Checked on what the worker saw,
    not on a reader thread's timing, so a loaded machine cannot blur it.)"""
    job = store.Job(texts=texts(30, "a"), attributes=ATTRIBUTES, deadline=time.time() + 0.3)
    enqueue(job)
    digests = [text_digest(text) for text in job.texts]
    published_before_call: list[int] = []
    call_ends: list[float] = []
    score = slow_model.score

    def observed(texts: Any, attributes: Any) -> Any:
        published_before_call.append(len(store.read(digests, ATTRIBUTES)))
        try:
            return score(texts, attributes)
        finally:
            call_ends.append(time.time())

    monkeypatch.setattr(slow_model, "score", observed)

    worker.score_batch()

    published = store.read(digests, ATTRIBUTES)
    assert 0 < len(published) < 15, slow_model.calls
    assert set(published) == set(digests[: len(published)])  # in the slate's order
    assert sum(slow_model.calls) == len(published)
    # As it goes: before each call, exactly the texts of the calls before it are readable.
    assert published_before_call == [sum(slow_model.calls[:k]) for k in range(len(slow_model.calls))]
    # Never a chunk started once one had ended past the deadline.
    assert all(end < job.deadline for end in call_ends[:-1]), (call_ends, job.deadline)
    assert len(slow_model.calls) > 1  # in chunks
    totals = stats.totals()
    assert totals["texts_scored"] == len(published)
    assert totals["texts_expired"] == 30 - len(published)  # left unscored, for background rescoring
    assert TextScore.objects.filter(scorer=identity()).count() == len(published)
    assert done_count(job.slate) == 1  # the web process stops waiting


def test_the_earliest_deadline_is_scored_first_and_its_job_counted_done_before_the_batch_ends(
    slow_model: SlowPerText,
) -> None:
    now = time.time()
    later = store.Job(texts=texts(4, "later"), attributes=ATTRIBUTES, deadline=now + 5)
    sooner = store.Job(texts=texts(4, "sooner"), attributes=ATTRIBUTES, deadline=now + 0.3)
    enqueue(sooner)
    enqueue(later)  # the newest: taken first
    seen: list[tuple[int, int]] = []
    original = store.write

    def watching(entries: object, done_jobs: object = ()) -> None:
        original(entries, done_jobs)  # type: ignore[arg-type]
        seen.append((done_count(sooner.slate), done_count(later.slate)))

    store.write = watching  # type: ignore[assignment]
    try:
        assert worker.score_batch() == 2
    finally:
        store.write = original  # type: ignore[assignment]

    assert (1, 0) in seen  # the sooner job was finished while the later one still waited
    assert seen[-1] == (1, 1)
    assert stats.totals()["texts_scored"] == 8


def test_a_jobs_shortest_texts_are_scored_first_so_more_of_them_make_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A model's time grows with a text's length: of texts due at the same moment, the short ones first give the
    most scored texts by then. Here three long posts (0.1 s each) come before six short ones (10 ms each) in the
    slate, and 0.3 s are left: in the slate's order the long ones would take it all."""
    calls: list[list[str]] = []

    class Recording(SlowPerCharacter):
        def score(self, texts: Sequence[str], attributes: Sequence[str]) -> list[Scores | None]:
            calls.append(list(texts))
            return super().score(texts, attributes)

    model = Recording(seconds_per_character=0.0005)
    model.score(["warm up"], ATTRIBUTES)  # loads the word lists, as a scorer process does before its first batch
    calls.clear()
    configure(backend=model)
    monkeypatch.setattr(worker, "pace", worker.Pace())
    worker.pace.observe(0.05, 1)  # a pace learnt on posts of middling length
    long_posts = tuple(f"long post {i} " + "x" * 187 for i in range(3))
    short_posts = tuple(f"short {i} " + "y" * 12 for i in range(6))
    job = store.Job(texts=long_posts + short_posts, attributes=ATTRIBUTES, deadline=time.time() + 0.3)
    enqueue(job)
    try:
        worker.score_batch()
    finally:
        configure()

    scored_in_order = [text for call in calls for text in call]
    assert scored_in_order[: len(short_posts)] == sorted(short_posts)  # every short post before any long one
    published = store.read([text_digest(text) for text in job.texts], ATTRIBUTES)
    assert {text_digest(text) for text in short_posts} <= set(published)


def test_a_job_too_late_for_one_text_is_dropped_and_one_that_cannot_finish_after_the_batch_waits_for_another() -> None:
    """At 10 ms a text: a job with 5 ms left is dropped (and counted done for its slate); of two 20-text jobs of
    one slate with 0.3 s left, a worker takes one and leaves the other (the second could start in time after the
    first, but not finish), which a second worker then takes: the two are scored side by side."""
    now = time.time() + 10  # the workers' clock, injected: nothing expires while the jobs are being queued
    slate = store.new_id()
    first = store.Job(texts=texts(20, "one"), attributes=ATTRIBUTES, deadline=now + 0.3, slate=slate)
    second = store.Job(texts=texts(20, "two"), attributes=ATTRIBUTES, deadline=now + 0.3, slate=slate)
    hopeless = store.Job(texts=texts(5, "late"), attributes=ATTRIBUTES, deadline=now + 0.005)
    enqueue(hopeless)
    enqueue(first, second)

    one = store.take_jobs(256, seconds_per_text=0.01, now=now)
    other = store.take_jobs(256, seconds_per_text=0.01, now=now)
    rest = store.take_jobs(256, seconds_per_text=0.01, now=now)

    assert [job.id for job in one.jobs] == [second.id]
    assert [job.id for job in other.jobs] == [first.id]
    assert rest.jobs == []
    assert (one.expired_jobs + other.expired_jobs + rest.expired_jobs) == 1
    assert (one.expired_texts + other.expired_texts + rest.expired_texts) == 5
    assert done_count(hopeless.slate) == 1
    assert store.queued_jobs() == 0


def test_a_fast_scorer_still_takes_many_slates_jobs_in_one_batch() -> None:
    now = time.time()
    jobs = [store.Job(texts=texts(25, f"s{n}"), attributes=ATTRIBUTES, deadline=now + 0.35) for n in range(6)]
    for job in jobs:
        enqueue(job)

    taken = store.take_jobs(256, seconds_per_text=0.0006, now=now)

    assert len(taken.jobs) == 6


def test_a_scorer_process_times_its_warm_up_on_texts_as_long_as_a_post(monkeypatch: pytest.MonkeyPatch) -> None:
    """A model's time grows with a text's length: a warm-up on a few words would size the first batch's chunks for
    texts far shorter than posts, and run them past their deadlines."""
    monkeypatch.setattr(worker, "pace", worker.Pace())
    model = ClockedModel(per_character=0.0002)

    worker.learn_pace(model, clock=model.clock)

    post = "a post of about the length of the warm-up texts: " + "x" * 90  # 140 characters: 28 ms at this model
    predicted = worker.pace.overhead + worker.pace.per_text
    assert 0.5 * 0.0002 * len(post) < predicted < 2 * 0.0002 * len(post), worker.pace.__dict__


def test_loading_the_model_counts_as_no_time_without_a_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """A scorer process that took longer than ``STALE_PACE_S`` to load its model keeps the pace its warm-up measured
    when its first batch finds only jobs that expired while it loaded."""
    monkeypatch.setattr(worker, "pace", worker.Pace())
    monkeypatch.setattr(worker, "_scorer_worker", True)
    monkeypatch.setattr(worker, "limit_model_threads", lambda: None)  # this test process's torch is left alone
    monkeypatch.setattr(worker, "_last_batch", time.monotonic() - worker.STALE_PACE_S - 1)  # imported long ago
    configure(backend=SlowPerText(seconds_per_text=0.005))
    try:
        worker.load_backend_in_each_process()
        learned = worker.pace.per_text
        job = store.Job(texts=texts(3, "old"), attributes=ATTRIBUTES, deadline=time.time() + 0.35)
        enqueue(job)

        assert worker.score_batch(now=job.deadline + 1) == 0  # expired while the model loaded ...
    finally:
        configure()

    assert learned > 0
    assert worker.pace.per_text == learned  # ... and the warm-up's pace is kept
    assert stats.totals()["jobs_expired"] == 1


def test_a_pace_that_lets_no_job_in_is_forgotten_after_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    """A first warm-up call far slower than the model's real pace would otherwise drop every job for good."""
    monkeypatch.setattr(worker, "pace", worker.Pace())
    worker.pace.observe(2.0, 1)  # nothing fits before a 0.35 s deadline at this pace
    monkeypatch.setattr(worker, "_last_batch", time.monotonic() - worker.STALE_PACE_S - 1)
    enqueue(store.Job(texts=texts(3, "x"), attributes=ATTRIBUTES, deadline=time.time() + 0.35))

    assert worker.score_batch() == 0  # dropped as hopeless ...

    assert worker.pace.per_text == 0.0  # ... and the pace forgotten: the next job is taken and measured
    enqueue(store.Job(texts=texts(3, "y"), attributes=ATTRIBUTES, deadline=time.time() + 0.35))
    assert store.take_jobs(256, seconds_per_text=worker.pace.per_text).jobs


def test_a_scorer_process_runs_its_torch_model_on_the_configured_threads(settings: Any) -> None:
    import torch

    before = torch.get_num_threads()
    settings.PRC_SCORER_THREADS = 1
    try:
        torch.set_num_threads(2)
        worker.limit_model_threads()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
