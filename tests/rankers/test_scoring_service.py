"""Scoring off the request path, with real scorer worker processes on the real Redis broker.

The web process here is the test process itself (Django's ASGI app through ``AsyncClient``) or real
``prc_site.serve`` processes; the scorer is ``celery worker -Q <a private scoring queue>`` in its own process.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.db import connection
from django.test import AsyncClient, Client

from participants.models import Study
from prc_site.celery import app as celery_app
from rankers.models import Slate, TextScore
from rankers.plugins.bridging import UPRANK_BRIDGING_WEIGHTS, UprankBridgingRanker, rank_by_weights
from rankers.scoring import configure, identity, readiness, scores_by_item, scoring_attributes, stats, store
from rankers.scoring.cache import text_digest
from rankers.scoring.rescore import unscored_texts
from rankers.scoring.service import prepare
from rankers.tasks import score_pending
from tests.conftest import _wait_for_worker
from tests.factories import ArmFactory, StudyFactory
from tests.rankers.conftest import _enrol, item, post_rank, reader_browser, request_with, valid_response
from tests.rankers.fake_scorers import NotHere

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
BRIDGING = "uprank_bridging"
HOLD_MS = 500
BUDGET = {"budget_ms": 400}
# How late an answer may be on a loaded two-core CI machine and still count as "at the hold". Scoring that made
# the answer wait would cost far more: the slow scorers below take 0.15 s a batch to forever.
LATE_MS = 400


def fresh_items(n: int, tag: str = "") -> list[dict[str, Any]]:
    """Posts nobody has scored: each text is new."""
    run = uuid.uuid4().hex[:8]
    return [
        item(
            f"{tag}{i}", f"Thank you for sharing, I respect your point {run}-{tag}-{i}; we agree on more than we think."
        )
        for i in range(n)
    ]


class Scorer:
    """A real scorer worker process on this test's private queue, keys and database."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process = process
        self.log = log

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once (a machine lost mid-batch)."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=15)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)


@pytest.fixture
def scoring_queue(settings: Any) -> Iterator[str]:
    """A private scoring queue, and tasks sent through the broker (not run eagerly) while the test runs."""
    queue = f"scoring-{uuid.uuid4().hex[:10]}"
    settings.PRC_SCORER_QUEUE = queue
    settings.PRC_SCORER_BACKEND = "baseline"
    configure(backend=NotHere())  # if this (web) process scored anything, NotHere would say so
    celery_app.conf.task_always_eager = False
    prepare()  # as prc_site.serve does before it listens
    try:
        yield queue
    finally:
        celery_app.conf.task_always_eager = True
        configure()


def scorer_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "prc_site.settings",
        "DATABASE_NAME": connection.settings_dict["NAME"],
        "CELERY_BROKER_URL": celery_app.conf.broker_url,
        "PRC_SCORER_QUEUE": django_settings.PRC_SCORER_QUEUE,
        "PRC_SCORER_KEY_PREFIX": django_settings.PRC_SCORER_KEY_PREFIX,
        "PRC_SCORER_BACKEND": django_settings.PRC_SCORER_BACKEND,
        **extra,
    }


def launch_scorer(tmp_path: Path, *, concurrency: int = 1, **env: str) -> Scorer:
    queue = django_settings.PRC_SCORER_QUEUE
    log = tmp_path / f"scorer-{uuid.uuid4().hex[:6]}.log"
    command = [sys.executable, "-m", "celery", "-A", "prc_site", "worker", "-Q", queue, "-n", f"{queue}@%h"]
    command += ["--concurrency", str(concurrency), "-l", "warning", "--without-mingle", "--without-gossip"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=scorer_env(**env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Scorer(process, log)


@pytest.fixture
def start_scorer(scoring_queue: str, tmp_path: Path, settings: Any) -> Iterator[Callable[..., Scorer]]:
    """``start_scorer(backend=None, concurrency=1, **environment)``: a ready scorer worker, stopped after the
    test. ``backend`` (a dotted path) becomes this process's ``PRC_SCORER_BACKEND`` too: the scorer's identity."""
    started: list[Scorer] = []

    def start(backend: str | None = None, *, concurrency: int = 1, **env: str) -> Scorer:
        if backend is not None:
            settings.PRC_SCORER_BACKEND = backend
        scorer = launch_scorer(tmp_path, concurrency=concurrency, **env)
        started.append(scorer)
        _wait_for_worker(f"{scoring_queue}@", scorer.process)
        return scorer

    yield start
    for scorer in started:
        scorer.stop()


@pytest.fixture
async def bridging(study: Study, settings: Any) -> tuple[str, str]:
    """A participant of an Uprank Bridging arm with the production timing: 500 ms hold, 400 ms budget."""
    study.rank_hold_ms = HOLD_MS
    await study.asave(update_fields=["rank_hold_ms"])
    settings.RANK_RANKER_BUDGET_MS = 400
    settings.PRC_SCORER_DEADLINE_S = 0.35
    settings.RANK_DB_LOOKUP_TIMEOUT_S = 30.0  # about scoring: a lookup slowed by a loaded machine must not untreat
    settings.RANK_LOOKUP_MS = 30_000  # ... nor shorten the ranker's time ...
    settings.RANK_SHED_LAG_MS = 0  # ... nor shed the treatment for a loop running behind
    participant, token = await sync_to_async(_enrol)(study, BRIDGING, True, {"ranker_config": BUDGET})
    return participant.public_id, token


async def timed_rank(client: AsyncClient, token: str, public_id: str, items: list[dict[str, Any]]) -> float:
    started = time.monotonic()
    valid_response(await post_rank(client, token, request_with(public_id, items)))
    return (time.monotonic() - started) * 1000


async def slates_of(public_id: str) -> list[Slate]:
    return [slate async for slate in Slate.objects.filter(participant_id=public_id).order_by("served_at")]


async def fully_scored_again(client: AsyncClient, token: str, public_id: str, tries: int = 12) -> bool:
    """Whether one of the slates of new posts sent over the next several seconds is scored in full (a scorer that
    dropped every job while overloaded forgets its pace after five seconds; a loaded machine may need longer)."""
    for attempt in range(tries):
        await timed_rank(client, token, public_id, fresh_items(10, tag=f"again{attempt}-"))
        if (await slates_of(public_id))[-1].n_scored == 10:
            return True
        await asyncio.sleep(0.5)
    return False


def wait_until(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# --- scoring across processes ---------------------------------------------------------------------------------


async def test_a_scorer_process_scores_a_slate_that_a_web_process_asked_for(
    async_client: AsyncClient, bridging: tuple[str, str], start_scorer: Callable[..., Scorer]
) -> None:
    await sync_to_async(start_scorer)()
    public_id, token = bridging
    items = fresh_items(20)

    latency = await timed_rank(async_client, token, public_id, items)

    [slate] = await slates_of(public_id)
    assert (slate.n_scored, slate.intervention_on, slate.fallback_reason) == (20, True, "")
    assert HOLD_MS - 5 <= latency < HOLD_MS + LATE_MS
    digests = {text_digest(i["text"]) for i in items}
    stored = TextScore.objects.filter(scorer=identity(), text_hash__in=digests)
    assert await stored.acount() == 20  # the durable copy, written by the worker
    assert NotHere.texts_seen == []
    assert (await sync_to_async(readiness.verdict)(identity())).status == "loaded"  # its start-up report


# --- deadlines travel with the work ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_job_whose_deadline_passed_while_it_waited_is_dropped_unscored_and_counted(
    start_scorer: Callable[..., Scorer],
) -> None:
    start_scorer("tests.rankers.fake_scorers.SlowBaseline", FAKE_SCORER_SECONDS="1.0")
    slow = store.Job(texts=("the only scorer is busy with this",), attributes=("TOXICITY",), deadline=time.time() + 30)
    asyncio.run(_enqueue(slow))
    score_pending.apply_async(queue=django_settings.PRC_SCORER_QUEUE)
    wait_until(lambda: store.queued_jobs() == 0)  # the worker has taken it and is scoring for a second
    late = store.Job(texts=("a job with 200 ms to live",), attributes=("TOXICITY",), deadline=time.time() + 0.2)
    asyncio.run(_enqueue(late))
    score_pending.apply_async(queue=django_settings.PRC_SCORER_QUEUE)

    wait_until(lambda: stats.totals()["jobs_expired"] == 1)
    assert stats.totals()["texts_expired"] == 1
    wait_until(lambda: stats.totals()["batches"] == 1)
    scored = set(TextScore.objects.values_list("text_hash", flat=True))
    assert scored == {text_digest(slow.texts[0])}  # the late job never reached the model


async def _enqueue(job: store.Job) -> None:
    admitted, _, _ = await store.aenqueue(job)
    assert admitted
    await store.close_async_client()


# --- what fits before the deadline is used: partial scoring across scorer processes --------------------------------


async def test_a_slate_too_big_to_score_in_time_is_ranked_on_what_two_scorer_processes_finished(
    async_client: AsyncClient, bridging: tuple[str, str], start_scorer: Callable[..., Scorer], settings: Any
) -> None:
    """30 fresh posts at 30 ms a text need 0.9 s of one process; the deadline is 0.35 s. The slate is split into
    two jobs, the two scorer processes each score the start of one in chunks, and the slate is ranked at its hold
    on what they published, as a treatment with its dose; the rest is counted and left for rescoring."""
    settings.PRC_SCORER_JOB_TEXTS = 15
    await sync_to_async(start_scorer)(
        "tests.rankers.fake_scorers.SlowPerText", concurrency=2, FAKE_SCORER_SECONDS_PER_TEXT="0.03"
    )
    public_id, token = bridging
    items = fresh_items(30)

    started = time.monotonic()
    response = valid_response(await post_rank(async_client, token, request_with(public_id, items)))
    latency = (time.monotonic() - started) * 1000

    assert HOLD_MS - 5 <= latency < HOLD_MS + LATE_MS
    [slate] = await slates_of(public_id)
    assert 0 < slate.n_scored < 30
    assert (slate.intervention_on, slate.fallback_reason) == (True, "")
    # Both jobs were worked on at once: each half of the slate has scored posts, each from its start.
    scored = await sync_to_async(store.read)([text_digest(i["text"]) for i in items], scoring_attributes())
    halves = [[text_digest(i["text"]) in scored for i in part] for part in (items[:15], items[15:])]
    assert all(half[0] for half in halves), halves
    lengths = [half.index(False) if False in half else 15 for half in halves]
    assert [sum(half) for half in halves] == lengths  # each scorer went through its job in order
    # Ranked by the arms' rule, unscored posts at their neutral place: the rule's own function gives the order,
    # for the scores that had arrived at the deadline (those of a chunk that ended just after it came too late).
    digest_of = {i["id"]: text_digest(i["text"]) for i in items}
    orders = []
    for first in range(min(lengths[0], slate.n_scored) + 1):
        arrived = [*items[:first], *items[15 : 15 + slate.n_scored - first]]
        scores = scores_by_item({i["id"]: digest_of[i["id"]] for i in arrived}, scored, UprankBridgingRanker.attributes)
        orders.append(rank_by_weights([i["id"] for i in items], scores, UPRANK_BRIDGING_WEIGHTS))
    assert response.ranked_ids in orders
    # The rest is counted as not scored in time, and is what background rescoring will score.
    totals = await sync_to_async(stats.totals)()
    assert totals["texts_expired"] + totals["jobs_expired"] > 0
    since = slate.served_at - dt.timedelta(seconds=1)
    left = await sync_to_async(unscored_texts)(since, since + dt.timedelta(minutes=1), 100)
    stored = TextScore.objects.filter(scorer=identity(), text_hash__in=[text_digest(i["text"]) for i in items])
    saved = {digest async for digest in stored.values_list("text_hash", flat=True)}
    assert left
    assert set(left) == {text_digest(i["text"]) for i in items} - saved


# --- overload sheds scoring, never time -----------------------------------------------------------------------


async def test_past_capacity_every_slate_answers_at_its_hold_and_the_shed_work_shows(
    async_client: AsyncClient,
    study: Study,
    bridging: tuple[str, str],
    start_scorer: Callable[..., Scorer],
    settings: Any,
) -> None:
    settings.PRC_SCORER_MAX_QUEUED_JOBS = 2
    await sync_to_async(start_scorer)("tests.rankers.fake_scorers.SlowBaseline", FAKE_SCORER_SECONDS="0.15")
    public_id, token = bridging
    control, control_token = await sync_to_async(_enrol)(study, "control", True, {})

    latencies = await asyncio.gather(
        *(timed_rank(async_client, token, public_id, fresh_items(10, tag=f"r{n}-")) for n in range(12)),
        *(timed_rank(async_client, control_token, control.public_id, fresh_items(10, tag=f"c{n}-")) for n in range(4)),
    )

    assert all(HOLD_MS - 5 <= latency < HOLD_MS + LATE_MS for latency in latencies), latencies  # control's too
    slates = await slates_of(public_id)
    assert len(slates) == 12
    assert sum(slate.n_scored or 0 for slate in slates) < 12 * 10  # scoring was shed ...
    totals = await sync_to_async(stats.totals)()
    assert totals["jobs_refused"] >= 1  # ... by admission control, and counted
    assert totals["items_scored"] < totals["items_wanted"]

    # Load gone, scoring comes back: the next slate of new posts is scored in full.
    await sync_to_async(wait_until)(lambda: store.queued_jobs() == 0)
    await asyncio.sleep(0.5)  # the last admitted batch finishes
    assert await fully_scored_again(async_client, token, public_id)


# --- a scorer that dies, hangs or answers garbage costs only scores -----------------------------------------------


async def test_a_scorer_killed_mid_load_costs_scores_not_time_and_a_new_one_takes_over(
    async_client: AsyncClient, bridging: tuple[str, str], start_scorer: Callable[..., Scorer]
) -> None:
    scorer = await sync_to_async(start_scorer)("tests.rankers.fake_scorers.SlowBaseline", FAKE_SCORER_SECONDS="0.2")
    public_id, token = bridging

    async def kill_soon() -> None:
        await asyncio.sleep(0.1)  # the first batch is being scored
        await sync_to_async(scorer.kill)()

    results = await asyncio.gather(
        kill_soon(), *(timed_rank(async_client, token, public_id, fresh_items(10, tag=f"k{n}-")) for n in range(6))
    )

    assert all(HOLD_MS - 5 <= latency < HOLD_MS + LATE_MS for latency in results[1:]), results
    slates = await slates_of(public_id)
    assert len(slates) == 6
    assert sum(slate.n_scored or 0 for slate in slates) < 60
    assert {slate.fallback_reason for slate in slates if slate.n_scored == 0} <= {"unscored"}

    await sync_to_async(start_scorer)("tests.rankers.fake_scorers.SlowBaseline", FAKE_SCORER_SECONDS="0.05")
    assert await fully_scored_again(async_client, token, public_id)


@pytest.mark.parametrize(
    ("backend", "counted"),
    [("tests.rankers.fake_scorers.Hanging", "jobs_expired"), ("tests.rankers.fake_scorers.Garbage", "texts_garbage")],
)
async def test_a_scorer_that_hangs_or_answers_garbage_leaves_the_slate_unscored_at_its_hold(
    async_client: AsyncClient,
    bridging: tuple[str, str],
    start_scorer: Callable[..., Scorer],
    backend: str,
    counted: str,
) -> None:
    await sync_to_async(start_scorer)(backend, PRC_SCORER_TASK_TIME_LIMIT_S="2")
    public_id, token = bridging

    latencies = [await timed_rank(async_client, token, public_id, fresh_items(5, tag=f"g{n}-")) for n in range(2)]

    assert all(HOLD_MS - 5 <= latency < HOLD_MS + LATE_MS for latency in latencies), latencies
    slates = await slates_of(public_id)
    assert [(s.n_scored, s.fallback_reason, s.intervention_on) for s in slates] == [(0, "unscored", False)] * 2
    # The hanging batch holds the only worker process until its time limit; the second job expires waiting.
    await sync_to_async(wait_until)(lambda: stats.totals()[counted] >= 1, 10)


def test_a_scorer_whose_backend_does_not_load_refuses_to_start_and_says_why(
    scoring_queue: str, tmp_path: Path, settings: Any
) -> None:
    settings.PRC_SCORER_BACKEND = "tests.rankers.fake_scorers.Unloadable"
    scorer = launch_scorer(tmp_path)

    try:
        status = scorer.process.wait(timeout=60)
    finally:
        scorer.stop()

    assert status != 0
    log = scorer.log.read_text()
    assert "scorer backend 'tests.rankers.fake_scorers.Unloadable' failed to load" in log
    assert "no model in /nonexistent/model-dir" in log
    # ... and tells the launch checklist, /healthz and the delivery page (rankers.scoring.readiness).
    verdict = readiness.verdict(identity())
    assert verdict.status == "failed"
    assert "no model in /nonexistent/model-dir" in verdict.failed[0].error


# --- texts are scored once ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_web(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        **scorer_env(),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / f"metrics-{port}"),
        # About the shared cache: a loaded machine must not shed the treatment. (RANK_LOOKUP_MS stays: the start-up
        # check refuses a lookup reserve that does not fit in the hold.)
        "RANK_SHED_LAG_MS": "0",
    }
    (tmp_path / f"metrics-{port}").mkdir()
    command = [sys.executable, "-m", "prc_site.serve", "--port", str(port), "--workers", "1"]
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True), f"http://127.0.0.1:{port}"


def wait_healthy(process: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx2.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        assert process.poll() is None, "the web server exited"
        assert time.monotonic() < deadline, "the web server did not start"
        time.sleep(0.3)


def rank_over_http(url: str, token: str, public_id: str, items: list[dict[str, Any]]) -> None:
    response = httpx2.post(
        f"{url}/rank",
        content=orjson.dumps(request_with(public_id, items)),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 200


def test_a_post_scored_for_one_web_process_is_served_from_the_shared_cache_to_another(
    start_scorer: Callable[..., Scorer], tmp_path: Path
) -> None:
    study = StudyFactory(rank_hold_ms=HOLD_MS)
    ArmFactory(study=study, slug="control", ranker_key="control", is_control=True)
    first, first_token = _enrol(study, BRIDGING, True, {"ranker_config": BUDGET})
    second, second_token = _enrol(study, BRIDGING, True, {"ranker_config": BUDGET})
    webs = [start_web(tmp_path), start_web(tmp_path)]
    scorer = start_scorer()
    try:
        for process, url in webs:
            wait_healthy(process, url)
        items = fresh_items(15)

        rank_over_http(webs[0][1], first_token, first.public_id, items)
        wait_until(lambda: TextScore.objects.filter(scorer=identity()).count() == 15)
        scorer.stop()  # nobody can score any more: the second web process has only the shared cache
        rank_over_http(webs[1][1], second_token, second.public_id, items)
    finally:
        for process, _ in webs:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)

    assert Slate.objects.get(participant_id=second.public_id).n_scored == 15
    totals = stats.totals()
    assert (totals["items_wanted"], totals["texts_cached"], totals["texts_scored"]) == (30, 15, 15)


def test_background_rescoring_scores_the_posts_of_slates_served_unscored(
    scoring_queue: str, settings: Any, tmp_path: Path
) -> None:
    """No scorer runs while the slate is served; the periodic task (here by hand, as its command) scores its
    posts afterwards, so that the next participant gets them scored from the cache, still with no scorer."""
    study = StudyFactory(rank_hold_ms=HOLD_MS)
    ArmFactory(study=study, slug="control", ranker_key="control", is_control=True)
    participant, token = _enrol(study, BRIDGING, True, {"ranker_config": BUDGET})
    items = [*fresh_items(8), item("photo", "")]
    client = AsyncClient()

    asyncio.run(post_rank(client, token, request_with(participant.public_id, items)))
    assert Slate.objects.get(participant_id=participant.public_id).n_scored == 0

    configure()  # the command is a scorer process of its own: it builds the configured (baseline) backend
    out = subprocess.run(
        [sys.executable, "manage.py", "rescore_slates", "--since-minutes", "10"],
        cwd=ROOT, env=scorer_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr

    assert "scored 8 texts with baseline" in out.stdout
    assert TextScore.objects.filter(scorer="baseline").count() == 8
    later, later_token = _enrol(study, BRIDGING, True, {"ranker_config": BUDGET})
    asyncio.run(post_rank(client, later_token, request_with(later.public_id, items)))
    assert Slate.objects.get(participant_id=later.public_id).n_scored == 8
    assert stats.totals()["texts_rescored"] == 8


def test_the_rescoring_task_is_scheduled_on_the_scoring_queue() -> None:
    entry = django_settings.CELERY_BEAT_SCHEDULE["rankers.rescore_missed_slates"]
    assert entry["task"] == "rankers.tasks.rescore_missed_slates"
    assert django_settings.CELERY_TASK_ROUTES[entry["task"]] == {"queue": django_settings.PRC_SCORER_QUEUE}


# --- what researchers see --------------------------------------------------------------------------------------


def test_shed_and_failed_scoring_shows_on_the_delivery_page_and_in_metrics(settings: Any) -> None:
    settings.METRICS_TOKEN = "scoring-metrics"
    stats.count(items_wanted=100, items_scored=40, texts_cached=10, jobs_refused=3, jobs_expired=2, texts_garbage=5)
    study = StudyFactory(status=Study.Status.RUNNING, timezone="UTC")
    browser = reader_browser()

    page = browser.get("/research/ranking/delivery/", {"study": study.slug}).content.decode()
    metrics = Client().get("/metrics", headers={"Authorization": "Bearer scoring-metrics"}).content.decode()

    last_5 = page[page.index('data-window="last 5 minutes"') :]
    assert '<td data-col="scored">40%</td>' in last_5[:600]
    assert '<td data-col="refused" class="bad">3</td>' in last_5[:900]
    assert '<td data-col="garbage" class="bad">5</td>' in last_5[:1500]
    assert 'prc_scoring_events_total{event="jobs_refused"} 3.0' in metrics
    assert "prc_scoring_scored_share 0.4" in metrics
