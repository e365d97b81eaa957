"""Where scores and scoring jobs live: Redis, shared by every web process and scorer worker, and PostgreSQL.

Redis keys (under ``PRC_SCORER_KEY_PREFIX``, default ``prc:scoring``):

- ``score:<scorer>:<text sha256>``: an ``Entry`` (expires after ``PRC_SCORER_CACHE_TTL_S``);
- ``jobs``: the queue of scoring jobs, newest first; each is ``"<deadline>|<texts>|<slate>|<json>"`` so that the
  Lua scripts below can read a job's deadline, size and slate without decoding it. A slate's texts may be split
  into several jobs (``PRC_SCORER_JOB_TEXTS`` each), so that several scorer processes score one slate at once;
- ``done:<slate>``: how many of the slate's jobs a worker has finished (written what it could, or dropped as too
  late), so that the waiting web process stops polling once all are.

PostgreSQL's ``TextScore`` is the durable copy: workers look there before scoring and write there after.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis
import redis.asyncio as aredis
from django.conf import settings

from prc_site.lib.asyncdb import per_loop
from prc_site.lib.embedded import redis_py_url
from rankers.models import TextScore
from rankers.scoring import identity, namespace
from rankers.scoring.cache import Entry, covering


def prefix() -> str:
    return str(settings.PRC_SCORER_KEY_PREFIX)


def score_key(digest: str) -> str:
    return f"{prefix()}:score:{namespace()}:{digest}"


def jobs_key() -> str:
    return f"{prefix()}:jobs"


def done_key(slate: str) -> str:
    return f"{prefix()}:done:{slate}"


def redis_url() -> str:
    return redis_py_url(settings.PRC_SCORER_REDIS_URL or settings.CELERY_BROKER_URL)


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Job:
    """Texts of one slate that no cache had, to be scored before ``deadline`` (Unix time) or not at all.
    ``slate`` names the slate's request: the jobs one slate was split into share it, and their done count."""

    texts: tuple[str, ...]
    attributes: tuple[str, ...]
    deadline: float
    scorer: str = field(default_factory=identity)
    id: str = field(default_factory=new_id)
    slate: str = field(default_factory=new_id)

    def encode(self) -> bytes:
        body = orjson.dumps({"id": self.id, "scorer": self.scorer, "attributes": self.attributes, "texts": self.texts})
        return f"{self.deadline:.3f}|{len(self.texts)}|{self.slate}|".encode() + body

    @classmethod
    def decode(cls, raw: bytes) -> Job:
        deadline, _n, slate, body = raw.split(b"|", 3)
        value = orjson.loads(body)
        return cls(
            texts=tuple(value["texts"]),
            attributes=tuple(value["attributes"]),
            deadline=float(deadline),
            scorer=value["scorer"],
            id=value["id"],
            slate=slate.decode(),
        )


def split_texts(texts: Sequence[str], most: int) -> list[tuple[str, ...]]:
    """``texts`` in consecutive parts of at most ``most`` (0: one part), as even in size as they can be."""
    if not texts:
        return []
    parts = 1 if most <= 0 else -(-len(texts) // most)
    size, extra = divmod(len(texts), parts)
    out, start = [], 0
    for n in range(parts):
        end = start + size + (1 if n < extra else 0)
        out.append(tuple(texts[start:end]))
        start = end
    return out


# Jobs whose deadline has passed are dropped from the old end of the queue; their count comes back.
_DROP_EXPIRED = """
local now = tonumber(ARGV[1])
local jobs, texts = 0, 0
while true do
  local tail = redis.call('LINDEX', KEYS[1], -1)
  if not tail then break end
  local deadline, n = string.match(tail, '^([^|]+)|([^|]+)|')
  if tonumber(deadline) >= now then break end
  redis.call('RPOP', KEYS[1])
  jobs = jobs + 1
  texts = texts + tonumber(n)
end
"""

# Admission control: queue a slate's jobs (ARGV[3], ...) only while fewer than ARGV[2] live jobs wait. Returns
# {admitted, expired jobs, expired texts}.
ENQUEUE = (
    _DROP_EXPIRED
    + """
if redis.call('LLEN', KEYS[1]) >= tonumber(ARGV[2]) then return {0, jobs, texts} end
for i = 3, #ARGV do redis.call('LPUSH', KEYS[1], ARGV[i]) end
return {1, jobs, texts}
"""
)

# A worker's batch: the newest jobs (the ones with the most time left) up to ARGV[2] texts, at ARGV[3] seconds a
# text plus ARGV[5] seconds a call. A job of which not even one text could be scored before its deadline is
# dropped (scoring it would be work for nobody) and counted done for its slate (ARGV[4] is the done keys'
# prefix), so that its web process stops waiting for it. The worker scores a job's texts in the order of their
# deadlines and publishes them as they are done (``rankers.scoring.worker``), so the first job is worth taking as
# long as its first text fits. A further job that could not be finished in time after the texts already taken goes
# back to the head of the queue, and the batch is complete: another scorer process (or this one's next batch) takes
# it, so that the jobs of a slate too big for one process are scored side by side. Returns {expired jobs, expired
# texts, job, ...}.
TAKE = (
    _DROP_EXPIRED
    + """
local out = {jobs, texts}
local taken = 0
local per_text = tonumber(ARGV[3])
local overhead = tonumber(ARGV[5])
while taken < tonumber(ARGV[2]) do
  local job = redis.call('LPOP', KEYS[1])
  if not job then break end
  local deadline, n, slate = string.match(job, '^([^|]+)|([^|]+)|([^|]+)|')
  if tonumber(deadline) < now + overhead + per_text then
    out[1] = out[1] + 1
    out[2] = out[2] + tonumber(n)
    redis.call('INCR', ARGV[4] .. slate)
    redis.call('EXPIRE', ARGV[4] .. slate, 60)
  elseif taken > 0 and tonumber(deadline) < now + overhead + (taken + tonumber(n)) * per_text then
    redis.call('LPUSH', KEYS[1], job)
    break
  else
    table.insert(out, job)
    taken = taken + tonumber(n)
  end
end
return out
"""
)


# --- synchronous side: scorer workers, the rescoring task, the dashboard -------------------------------------

_sync_clients: dict[int, redis.Redis] = {}
_sync_lock = threading.Lock()


def client() -> redis.Redis:
    """This process's Redis client (a forked worker child makes its own)."""
    with _sync_lock:
        pid = os.getpid()
        if pid not in _sync_clients:
            timeout = settings.PRC_SCORER_REDIS_TIMEOUT_S
            _sync_clients.clear()
            _sync_clients[pid] = redis.Redis.from_url(
                redis_url(), socket_timeout=timeout, socket_connect_timeout=timeout
            )
        return _sync_clients[pid]


@dataclass
class Taken:
    jobs: list[Job]
    expired_jobs: int
    expired_texts: int


def take_jobs(
    max_texts: int, *, seconds_per_text: float = 0.0, overhead: float = 0.0, now: float | None = None
) -> Taken:
    """The newest live jobs, up to ``max_texts`` texts, that can start before their deadlines at ``overhead +
    n * seconds_per_text`` seconds a call of n texts (see ``TAKE``); hopeless ones are dropped and counted."""
    reply = client().eval(TAKE, 1, jobs_key(), now or time.time(), max_texts, seconds_per_text, done_key(""), overhead)
    expired_jobs, expired_texts, *raw = reply
    return Taken([Job.decode(r) for r in raw], int(expired_jobs), int(expired_texts))


def read(digests: Sequence[str], attributes: Sequence[str]) -> dict[str, Entry]:
    if not digests:
        return {}
    values = client().mget([score_key(d) for d in digests])
    return _covering(digests, values, attributes)


def write(entries: Mapping[str, Entry], done_jobs: Sequence[Job] = ()) -> None:
    """Put ``entries`` (by text digest) in Redis and count ``done_jobs`` finished for their slates, in one round
    trip."""
    if not entries and not done_jobs:
        return
    pipe = client().pipeline(transaction=False)
    for digest, entry in entries.items():
        pipe.set(score_key(digest), entry.encode(), ex=settings.PRC_SCORER_CACHE_TTL_S)
    for job in done_jobs:
        pipe.incr(done_key(job.slate))
        pipe.expire(done_key(job.slate), 60)
    pipe.execute()


def queued_jobs() -> int:
    return int(client().llen(jobs_key()))


def load_durable(digests: Sequence[str], attributes: Sequence[str]) -> dict[str, Entry]:
    """Entries PostgreSQL holds for these texts (by digest) that cover ``attributes``."""
    rows = (
        TextScore.objects.of_scorer(identity())
        .filter(text_hash__in=list(digests))
        .values_list("text_hash", "asked", "scores")
    )
    entries = {digest: Entry(frozenset(asked), scores) for digest, asked, scores in rows}
    return {digest: entry for digest, entry in entries.items() if entry.covers(attributes)}


def save_durable(entries: Mapping[str, Entry]) -> None:
    """Upsert ``entries`` into PostgreSQL in one statement (a later scoring of a text replaces the earlier)."""
    scorer = identity()
    rows = [
        TextScore(scorer=scorer, text_hash=digest, asked=sorted(entry.asked), scores=dict(entry.scores))
        for digest, entry in entries.items()
    ]
    TextScore.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["scorer", "text_hash"],
        update_fields=["asked", "scores", "scored_at"],
        batch_size=1000,
    )


# --- asynchronous side: the web processes ---------------------------------------------------------------------

_async_clients: dict[asyncio.AbstractEventLoop, aredis.Redis] = {}


def async_client() -> aredis.Redis:
    """This event loop's client; a bounded pool, and every call limited to ``PRC_SCORER_REDIS_TIMEOUT_S``."""
    timeout = settings.PRC_SCORER_REDIS_TIMEOUT_S
    return per_loop(
        _async_clients,
        lambda: aredis.Redis(
            connection_pool=aredis.BlockingConnectionPool.from_url(
                redis_url(), max_connections=16, timeout=timeout, socket_timeout=timeout, socket_connect_timeout=timeout
            )
        ),
    )


async def close_async_client() -> None:
    client = _async_clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


async def aread(digests: Sequence[str]) -> dict[str, bytes]:
    """Encoded entries Redis holds for ``digests`` (one MGET)."""
    if not digests:
        return {}
    values = await async_client().mget([score_key(d) for d in digests])
    return {digest: raw for digest, raw in zip(digests, values, strict=True) if isinstance(raw, bytes)}


async def adone(slate: str, jobs: int = 1) -> bool:
    """Whether workers have finished with all ``jobs`` jobs of ``slate`` (written their scores, or dropped them)."""
    raw = await async_client().get(done_key(slate))
    return raw is not None and int(raw) >= jobs


async def aenqueue(*jobs: Job) -> tuple[bool, int, int]:
    """Queue one slate's ``jobs`` unless ``PRC_SCORER_MAX_QUEUED_JOBS`` live jobs wait: (admitted, expired jobs,
    expired texts)."""
    admitted, expired, texts = await async_client().eval(
        ENQUEUE, 1, jobs_key(), time.time(), settings.PRC_SCORER_MAX_QUEUED_JOBS, *(job.encode() for job in jobs)
    )
    return bool(admitted), int(expired), int(texts)


def _covering(digests: Sequence[str], values: Sequence[Any], attributes: Sequence[str]) -> dict[str, Entry]:
    return covering({digest: Entry.decode(raw) for digest, raw in zip(digests, values, strict=True)}, attributes)
