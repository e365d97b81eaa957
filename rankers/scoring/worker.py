"""The scorer worker: Celery processes on ``PRC_SCORER_QUEUE`` that score queued texts in batches.

    celery -A prc_site worker -Q scoring -n scorer@%h --concurrency 2

Each ``score_pending`` message makes a worker process take one batch (``score_batch``):

1. Take the newest jobs from the Redis queue, up to ``PRC_SCORER_BATCH_TEXTS`` texts, across every web process's
   requests. Jobs of which not even one text could be scored before the deadline at the process's recent pace
   are dropped before they start, and counted; a further job that could not be finished in time after this
   batch's other texts is left for another scorer process, so that two processes score one slate's jobs at once.
2. Drop jobs for another scorer (a worker configured with a different backend or model): counted as failed.
3. Deduplicate the texts; take those Redis or PostgreSQL already hold from there.
4. Score the rest in chunks, earliest deadline first and, within a deadline, shortest text first (``chunk_size``):
   each chunk's scores go to Redis as soon as it is done, and a job is counted done for its slate as soon as its
   last text is, so what fits before a deadline is used even when the whole job does not (and the most texts fit
   when the short ones go first). Texts whose deadline comes before they could be scored are not scored (counted
   as expired; background rescoring scores them later). Invalid answers are counted as garbage and leave those
   texts unscored.
5. Upsert the batch's scores into PostgreSQL.

A worker consuming the scoring queue builds and loads its backend before it takes any work; a backend that does
not load (a missing model directory, say) stops the worker with a clear message instead of leaving every slate
unscored. A batch that hangs is ended by the task's time limit (``PRC_SCORER_TASK_TIME_LIMIT_S``), which
replaces the worker process: only that batch's scores are lost.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings

from rankers.scoring import get_backend, identity, load_backend, make_backend, readiness, score_texts, stats, store
from rankers.scoring.backends import ScorerBackend
from rankers.scoring.cache import Entry, text_digest

logger = logging.getLogger(__name__)


class Pace:
    """This process's recent scoring time: a call of n texts takes about ``overhead + n * per_text`` seconds,
    fitted by exponentially weighted least squares over recent calls (each call weighs ``weight``, older ones
    fade). Both terms matter: a model with a fixed cost per call scored in small chunks would otherwise look
    slower per text at each chunk, and be given ever smaller ones. A scorer process starts with two calls of
    different sizes (its warm-up) so that the two can be told apart; while all the calls it remembers are of one
    size, the whole time is taken as per text."""

    def __init__(self, weight: float = 0.2) -> None:
        self.weight = weight
        self.sums = [0.0] * 5  # weights, n, t, n*n, n*t
        self.overhead = 0.0
        self.per_text = 0.0

    def observe(self, seconds: float, texts: int) -> None:
        if texts <= 0:
            return
        fade = 1 - self.weight if self.sums[0] else 0.0
        sample = (1.0, float(texts), seconds, float(texts * texts), texts * seconds)
        self.sums = [fade * total + value for total, value in zip(self.sums, sample, strict=True)]
        weight, n, t, nn, nt = self.sums
        mean_n, mean_t = n / weight, t / weight
        spread = nn / weight - mean_n * mean_n
        slope = (nt / weight - mean_n * mean_t) / spread if spread > 0.01 * mean_n * mean_n else -1.0
        if slope < 0 or mean_t - slope * mean_n < 0:
            self.overhead, self.per_text = 0.0, mean_t / mean_n
        else:
            self.overhead, self.per_text = mean_t - slope * mean_n, slope


pace = Pace()

# A pace that says no job can make its deadline would never be corrected, since only scoring updates it (a slow
# first warm-up call can do that): after this long without a batch while jobs were dropped as hopeless, it is
# forgotten, and the next batch measures it again.
STALE_PACE_S = 5.0
_last_batch = time.monotonic()


# What share of the time left before the earliest deadline one chunk may be expected to take.
CHUNK_SHARE = 2 / 3


def chunk_size(pending: int, seconds_left: float | None, overhead: float, per_text: float) -> int:
    """How many of ``pending`` texts to score in the next backend call: all of them when there is no deadline or
    no pace known yet; otherwise as many as one call is expected to score, at ``overhead + n * per_text``
    seconds, in ``CHUNK_SHARE`` of the time left before the earliest deadline. Less than all of it, so that a
    chunk slower than the recent pace still ends in time, and the chunks that follow shrink towards the deadline
    instead of one running past it. When the cost per call alone takes that share, one call is all there is
    time for: it gets as many texts as fit in all the time left (at least one)."""
    if seconds_left is None or per_text <= 0:
        return pending
    size = int((seconds_left * CHUNK_SHARE - overhead) / per_text)
    if size < 1:
        size = int((seconds_left - overhead) / per_text)
    return max(1, min(pending, size))


class Progress:
    """Which of a batch's jobs still wait for which texts, to count each job done as soon as its last is."""

    def __init__(self, jobs: Sequence[store.Job]) -> None:
        self.waiting = {job.id: (job, {text_digest(text) for text in job.texts}) for job in jobs}

    def resolve(self, digests: Iterable[str]) -> list[store.Job]:
        """Mark ``digests`` finished (scored or given up); returns the jobs that have no text left."""
        finished = set(digests)
        done = []
        for job_id, (job, texts) in list(self.waiting.items()):
            texts -= finished
            if not texts:
                done.append(job)
                del self.waiting[job_id]
        return done


def score_batch(now: float | None = None) -> int:
    """Take and score one batch of queued jobs; returns how many jobs it took (0 when the queue was empty)."""
    global _last_batch, pace
    taken = store.take_jobs(
        settings.PRC_SCORER_BATCH_TEXTS, overhead=pace.overhead, seconds_per_text=pace.per_text, now=now
    )
    stats.count(jobs_expired=taken.expired_jobs, texts_expired=taken.expired_texts)
    if taken.jobs:
        _last_batch = time.monotonic()
    elif taken.expired_jobs and pace.per_text > 0 and time.monotonic() - _last_batch > STALE_PACE_S:
        logger.warning("no job fitted this process's pace for %.0f s; measuring it again", STALE_PACE_S)
        pace = Pace()
        _last_batch = time.monotonic()
    if taken.expired_jobs and not taken.jobs:
        logger.info("batch: no job taken, %d dropped as too late", taken.expired_jobs)
    mine = sorted((job for job in taken.jobs if job.scorer == identity()), key=lambda job: job.deadline)
    foreign = [job for job in taken.jobs if job.scorer != identity()]
    if foreign:
        logger.error("dropped %d jobs for scorer %r; this worker is %r", len(foreign), foreign[0].scorer, identity())
        stats.count(texts_failed=sum(len(job.texts) for job in foreign))
        store.write({}, done_jobs=foreign)
    if mine:
        attributes = tuple(sorted({a for job in mine for a in job.attributes}))
        texts: dict[str, str] = {}
        deadlines: dict[str, float] = {}
        for job in mine:  # earliest deadline first; a text two jobs share can wait for the later one
            for text in job.texts:
                digest = text_digest(text)
                texts[digest] = text
                deadlines[digest] = max(deadlines.get(digest, 0.0), job.deadline)
        score_and_store(texts, attributes, jobs=mine, deadlines=deadlines, dropped=taken.expired_jobs)
    return len(taken.jobs)


def score_and_store(
    texts: dict[str, str],
    attributes: Sequence[str],
    *,
    jobs: Sequence[store.Job] = (),
    deadlines: Mapping[str, float] | None = None,
    dropped: int = 0,
) -> int:
    """Make sure every text (by digest) has scores in Redis and PostgreSQL, or, with ``deadlines`` (Unix time by
    digest), every text that can be scored before its deadline; ``jobs`` are counted done as their texts are
    (``dropped``: how many jobs the batch's take dropped as too late, for the log line). Returns how many texts
    the backend scored."""
    started = time.perf_counter()
    pace_before = (pace.overhead, pace.per_text)
    first_left = min(deadlines.values()) - time.time() if deadlines else None
    chunks: list[str] = []
    progress = Progress(jobs)
    known = store.read(list(texts), attributes)
    missing = [digest for digest in texts if digest not in known]
    from_db = store.load_durable(missing, attributes) if missing else {}
    pending = [digest for digest in missing if digest not in from_db]
    if deadlines is not None:  # shortest first within a deadline: more of a job's texts are done by it
        pending.sort(key=lambda digest: (deadlines[digest], len(texts[digest])))
    store.write(from_db, done_jobs=progress.resolve(set(texts) - set(pending)))
    backend = get_backend()
    entries: dict[str, Entry] = {}
    failed = garbage = late = 0
    while pending:
        if deadlines is not None:
            now = time.time()
            first_done = now + pace.overhead + pace.per_text  # when one text started now would be scored
            on_time = [digest for digest in pending if deadlines[digest] >= first_done]
            gave_up = [digest for digest in pending if deadlines[digest] < first_done]
            late += len(gave_up)
            pending = on_time
            if gave_up:
                store.write({}, done_jobs=progress.resolve(gave_up))
            if not pending:
                break
        chunk, pending = _next_chunk(backend, pending, deadlines, time.time())
        chunk_started, chunk_cpu = time.perf_counter(), time.process_time()
        scored = score_texts(backend, [texts[d] for d in chunk], attributes)
        seconds = time.perf_counter() - chunk_started
        pace.observe(seconds, len(chunk))
        chunks.append(f"{len(chunk)}:{seconds * 1000:.0f}/{(time.process_time() - chunk_cpu) * 1000:.0f}")
        store.write(scored.entries, done_jobs=progress.resolve(chunk))
        entries.update(scored.entries)
        failed, garbage = failed + scored.failed, garbage + scored.garbage
    _save(entries)
    stats.count(
        batches=1,
        texts_scored=len(entries),
        texts_from_db=len(from_db),
        texts_failed=failed,
        texts_garbage=garbage,
        texts_expired=late,
        scoring_ms=round((time.perf_counter() - started) * 1000),
    )
    if deadlines is not None:
        logger.info(
            "batch: %d jobs, %d texts (%d from PostgreSQL), %d dropped as too late; first deadline in %s ms; "
            "pace %.0f ms + %.1f ms/text; chunks (texts:wall/CPU ms) %s; %d texts late",
            len(jobs), len(texts), len(from_db), dropped,
            "?" if first_left is None else f"{first_left * 1000:.0f}",
            pace_before[0] * 1000, pace_before[1] * 1000, " ".join(chunks) or "-", late,
        )  # fmt: skip
    return len(entries)


def _next_chunk(
    backend: ScorerBackend, pending: list[str], deadlines: Mapping[str, float] | None, now: float
) -> tuple[list[str], list[str]]:
    """The next chunk of ``pending`` (sorted by deadline) and what is left. A backend that scores its texts
    concurrently (remote calls: ``concurrent = True``) gets them all at once: its time does not grow with the
    number of texts."""
    if deadlines is None or getattr(backend, "concurrent", False):
        return pending, []
    size = chunk_size(len(pending), deadlines[pending[0]] - now, pace.overhead, pace.per_text)
    return pending[:size], pending[size:]


def _save(entries: dict[str, Entry]) -> None:
    if not entries:
        return
    try:
        store.save_durable(entries)
    except Exception:  # Redis has them; the rescoring task will write them again if they expire there first
        logger.exception("%d scores not saved to PostgreSQL", len(entries))


def consumes_scoring_queue(worker: Any) -> bool:
    queues = worker.app.amqp.queues.consume_from or {}
    return settings.PRC_SCORER_QUEUE in queues


# Set in a scorer worker's main process before it forks its children.
_scorer_worker = False


def refuse_to_start_without_a_backend(sender: str, instance: Any, **kwargs: Any) -> None:
    """A scorer worker checks its backend before it consumes anything; other workers do not load models."""
    global _scorer_worker
    if not consumes_scoring_queue(instance):
        return
    _scorer_worker = True
    if settings.PRC_SCORER_NICE:
        yield_cpu(settings.PRC_SCORER_NICE)
    try:
        backend = make_backend()
        load_backend(backend)
    except Exception as error:
        message = (
            f"scorer backend {identity()!r} failed to load: {error}. "
            "Fix PRC_SCORER_BACKEND and its settings (see docs/rankers.md); this scorer worker will not start."
        )
        logger.critical(message)
        print(message, file=sys.stderr, flush=True)
        readiness.report(sender, identity(), error=f"{type(error).__name__}: {error}")  # for the launch checklist
        raise SystemExit(3) from error
    readiness.report(sender, identity())
    logger.info("scorer worker ready: backend %s", identity())


def session_nice(autogroup: Path = Path("/proc/self/autogroup")) -> int | None:
    """The niceness of this process's session (its Linux autogroup), or None where there is none to read: a
    kernel without autogroups, or a process in the root group (one whose session came from init without
    ``setsid``, as in many containers), whose file reads empty."""
    try:
        fields = autogroup.read_text().split()
    except OSError:
        return None
    return int(fields[-1]) if fields else None


def yield_cpu(nice: int, autogroup: Path = Path("/proc/self/autogroup")) -> None:
    """Lower this process's CPU priority by ``nice`` so that, on a machine shared with web processes, the kernel
    gives them the CPU first: past capacity the scorers fall behind (scores are shed), never the answers.

    Linux shares the CPU first between sessions (autogroups: each session started with ``setsid``, as
    ``run_platform`` and service managers start workers, gets an equal share whatever its processes' niceness),
    and only then by niceness within a session. So a scorer worker that leads its own session lowers its
    session's priority too; one started inside someone's terminal session leaves that session alone."""
    os.nice(nice)
    if os.getsid(0) != os.getpid() or not autogroup.exists():
        return
    try:
        autogroup.write_text(f"{nice}\n")
    except OSError as error:  # a kernel without autogroups, or not allowed: the niceness above still applies
        logger.warning("could not lower the scorer session's CPU priority: %s", error)


def load_backend_in_each_process(**kwargs: Any) -> None:
    """Each worker process builds its own backend (models do not survive a fork well) before its first batch."""
    if _scorer_worker:
        try:
            backend = get_backend()
            limit_model_threads()
            load_backend(backend)
            if not getattr(backend, "concurrent", False):  # remote (perhaps paid) calls: their pace comes from work
                learn_pace(backend)
        except Exception:
            logger.exception("scorer backend %s failed to load in a worker process", identity())
        global _last_batch
        _last_batch = time.monotonic()  # the pace is new: loading the model is no time without a batch


def limit_model_threads() -> None:
    """Run a torch model on ``PRC_SCORER_THREADS`` threads per scorer process (1): scorer processes already run
    side by side, and torch's default of one thread per core made a MiniLM-sized call take 0.8 s instead of
    20 ms on a loaded two-core machine (the threads of each process wait for one another)."""
    torch = sys.modules.get("torch")  # only a backend that runs a torch model has imported it
    if torch is not None:
        torch.set_num_threads(settings.PRC_SCORER_THREADS)


WARM_UP_SIZES = (1, 8)
# A model's time grows with a text's tokens: the warm-up texts are as long as a typical post (about 140
# characters), so that the first batch's chunks are sized for posts, not for a few words.
WARM_UP_TEXT = (
    "warm up {n}: the council met on Tuesday to discuss the new bus routes, and people on both sides said they "
    "wanted to hear more before the vote"
)


def learn_pace(backend: ScorerBackend, clock: Callable[[], float] = time.perf_counter) -> None:
    """Time calls of two sizes, so that the process's first batch is already scored in chunks that fit."""
    for size in WARM_UP_SIZES:
        texts = [WARM_UP_TEXT.format(n=n) for n in range(size)]
        started = clock()
        backend.score(texts, ["TOXICITY"])
        pace.observe(clock() - started, size)


def connect_signals() -> None:
    """Called from ``RankersConfig.ready``."""
    from celery.signals import celeryd_after_setup, worker_process_init

    celeryd_after_setup.connect(refuse_to_start_without_a_backend)
    worker_process_init.connect(load_backend_in_each_process)
