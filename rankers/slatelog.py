"""Writing the slate log off the request path.

The view starts ``write_slate`` as a task right after ranking and awaits it at
the end of the hold, so the write costs the participant nothing. Writes from
concurrent requests are grouped: one writer task per event loop drains a
queue and stores each batch on its own psycopg ``AsyncConnection`` with one
statement and one round trip (``INSERT_BATCH``: content items with ``ON
CONFLICT DO NOTHING`` in a data-modifying CTE, then the slates, rows sent as
JSON documents), which is what keeps 300 slates/s on two cores. Django's sync
ORM would serialise them on one thread.

If a write fails, the slate goes to a Redis list instead (the broker's Redis,
append-only file on) and ``drain_fallback`` (the Celery task
``rankers.tasks.drain_slate_fallback``) moves it into PostgreSQL later, so an
answered slate is never lost silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import re
import uuid
from collections import OrderedDict
from collections.abc import Collection, Coroutine, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import orjson
import psycopg
from django.conf import settings
from django.db import connections

from participants.models import Participant
from prc_site.lib.asyncdb import connect, per_loop, within
from prc_site.lib.embedded import redis_py_url
from rankers import prometheus
from rankers.slate_metrics import slate_change

logger = logging.getLogger(__name__)

BATCH_SIZE = 200
# A drain that dies holding the lock frees it after this long; a run of 5,000 slates takes well under it.
DRAIN_LOCK_S = 600


@dataclass  # not frozen: a frozen dataclass costs three times as much to build, and a slate makes fifty
class ContentRow:
    platform: str
    item_id: str
    text_hash: str
    type: str
    post_id: str
    parent_id: str
    title: str
    text: str
    author_name_hash: str
    created_at: str | None  # ISO 8601
    embedded_urls: list[str]


@dataclass
class SlateRecord:
    """One row of ``rankers.Slate`` plus the content it showed that this process has not stored yet, as plain data."""

    served_at: str  # ISO 8601, UTC
    participant_id: str
    study_id: int
    arm: str
    effective_arm: str
    ranker_key: str
    platform: str
    content_type: str
    session_id: str
    original_ids: list[str]
    original_hashes: list[str]
    returned_ids: list[str]
    added_ids: list[str]
    deleted_ids: list[str]
    invalid_items: dict[str, str]
    ranker_ms: float | None
    served_ms: float
    fallback_reason: str
    intervention_on: bool
    prefetch: bool
    nrc: float | None
    rbo: float | None
    n_items: int
    n_added: int
    n_deleted: int
    content: list[ContentRow] = field(default_factory=list)
    hold_ms: float | None = None  # what the answer was held to (the ramp's value at the time)
    phase: str = ""  # baseline, not_started or assigned: why the effective arm is what it is
    n_scored: int | None = None  # items scored on every attribute the ranker reads; None: it reads none
    slate_pass: int = 1
    slate_length: int | None = None
    fixed_items: dict[str, str] = field(default_factory=dict)
    capped: bool = False
    # Provenance of each inserted post, in feed order: {"id", "source_id", "lean", "annotation_version"}.
    inserted: list[dict[str, Any]] = field(default_factory=list)
    # Made when the slate is served; a second insert of the same slate (a retry, two drains) is a no-op.
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    # Only on a slate answered before its participant was known (no participant_id yet): the SHA-256 of the
    # extension token, which the drain uses to attribute it. Never stored in PostgreSQL.
    token_hash: str = ""

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, data: bytes | str) -> SlateRecord:
        raw = orjson.loads(data)
        raw["content"] = [ContentRow(**row) for row in raw.get("content", [])]
        # Slates queued before slates had an id get one from their own bytes: draining one twice stores it once.
        raw.setdefault("uid", str(uuid.uuid5(uuid.NAMESPACE_URL, hashlib.sha256(_as_bytes(data)).hexdigest())))
        return cls(**raw)


def _as_bytes(data: bytes | str) -> bytes:
    return data.encode() if isinstance(data, str) else data


def order_columns(
    original: Sequence[str],
    returned: Sequence[str],
    *,
    movable: Collection[str] | None = None,
    slate_length: int | None = None,
) -> dict[str, Any]:
    """A slate's original and returned order and what changed between them, as ``SlateRecord`` fields.

    ``movable`` (the ids the arm could move) and ``slate_length`` (Table S11's) define the normalized rank
    change; without them every item counts and the slate is as long as the request.
    """
    change = slate_change(original, returned, movable, slate_length)
    return {
        "original_ids": list(original),
        "returned_ids": list(returned),
        "added_ids": change.added_ids,
        "deleted_ids": change.deleted_ids,
        "nrc": change.nrc,
        "rbo": change.rbo,
        "n_items": change.n_items,
        "n_added": change.n_added,
        "n_deleted": change.n_deleted,
        "slate_length": slate_length if slate_length is not None else len(original),
    }


# Column -> PostgreSQL type of ``rankers_slate`` (Slate model), in insert order.
SLATE_COLUMNS = {
    "served_at": "timestamptz",
    "participant_id": "text",
    "study_id": "integer",
    "arm": "text",
    "effective_arm": "text",
    "ranker_key": "text",
    "platform": "text",
    "content_type": "text",
    "session_id": "text",
    "original_ids": "text[]",
    "original_hashes": "text[]",
    "returned_ids": "text[]",
    "added_ids": "text[]",
    "deleted_ids": "text[]",
    "invalid_items": "jsonb",
    "ranker_ms": "double precision",
    "served_ms": "double precision",
    "fallback_reason": "text",
    "intervention_on": "boolean",
    "prefetch": "boolean",
    "nrc": "double precision",
    "rbo": "double precision",
    "n_items": "integer",
    "n_added": "integer",
    "n_deleted": "integer",
    "hold_ms": "double precision",
    "phase": "text",
    "n_scored": "integer",
    "slate_pass": "smallint",
    "slate_length": "integer",
    "fixed_items": "jsonb",
    "capped": "boolean",
    "inserted": "jsonb",
    "uid": "uuid",
}
CONTENT_COLUMNS = {
    "platform": "text",
    "item_id": "text",
    "text_hash": "text",
    "type": "text",
    "post_id": "text",
    "parent_id": "text",
    "title": "text",
    "text": "text",
    "author_name_hash": "text",
    "created_at": "timestamptz",
    "embedded_urls": "text[]",
}


def _insert_from_json(table: str, columns: dict[str, str], extra: str = "", suffix: str = "") -> str:
    """One statement per batch: the rows travel as one JSON array (orjson is C; psycopg's array dumping is not).

    Array columns arrive as JSON arrays and are unpacked server-side.
    """
    record_type = ", ".join(f"{name} {'jsonb' if kind.endswith('[]') else kind}" for name, kind in columns.items())
    values = ", ".join(
        f"ARRAY(SELECT jsonb_array_elements_text(r.{name}))" if kind.endswith("[]") else f"r.{name}"
        for name, kind in columns.items()
    )
    names = ", ".join(columns)
    # Names are the constants above; the rows are a parameter.
    insert = f"INSERT INTO {table} ({names}{', ' + extra if extra else ''}) "
    select = f"SELECT {values}{', now()' if extra else ''} "
    return f"{insert}{select}FROM jsonb_to_recordset(%s::jsonb) AS r({record_type}) {suffix}"


INSERT_SLATES = _insert_from_json("rankers_slate", SLATE_COLUMNS, suffix="ON CONFLICT (uid, served_at) DO NOTHING")
INSERT_CONTENT = _insert_from_json(
    "rankers_contentitem", CONTENT_COLUMNS, extra="first_seen_at",
    suffix="ON CONFLICT (platform, item_id, text_hash) DO NOTHING",
)  # fmt: skip
# Both in one statement: atomic on its own, one round trip instead of BEGIN, two inserts and COMMIT.
# Parameters: the content rows, then the slates.
INSERT_BATCH = f"WITH content AS ({INSERT_CONTENT}) {INSERT_SLATES}"


# A JSON-escaped NUL (\u0000) that is not itself the tail of an escaped backslash.
_JSON_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def _json_param(rows: list[Any]) -> str:
    """Rows as one JSON document. PostgreSQL text and jsonb cannot hold NUL: it is dropped from every
    string (ids, text, reasons), since one NUL would otherwise make the database refuse the whole batch."""
    document = orjson.dumps(rows).decode()
    return _JSON_NUL.sub(r"\1", document) if "\\u0000" in document else document


# Every string a request brings is bounded here, at the edge, to what its column holds: one 300-character
# id must not make PostgreSQL refuse a batch. Ids too long for their column (and, so that a slate's ids keep
# matching its content rows, the same ids in the slate's arrays) are stored as a prefix and a digest of the whole.
ID_LENGTH = 255  # ContentItem.item_id, post_id and parent_id; Slate.session_id
SLATE_ID_ARRAYS = ("original_ids", "returned_ids", "added_ids", "deleted_ids")
CONTENT_LIMITS = {"platform": 20, "item_id": ID_LENGTH, "type": 20, "post_id": ID_LENGTH, "parent_id": ID_LENGTH,
                  "text_hash": 64, "author_name_hash": 128}  # fmt: skip


def bounded(value: str, limit: int) -> str:
    """``value`` if it has at most ``limit`` characters, else a prefix and the SHA-256 of the whole (still
    distinct from every other long value, and the same every time)."""
    if len(value) <= limit:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[: min(64, limit // 2)]
    return f"{value[: limit - len(digest) - 1]}~{digest}"


def _bounded_ids(ids: list[str]) -> list[str]:
    if all(len(i) <= ID_LENGTH for i in ids):  # nearly always: no new list
        return ids
    return [bounded(i, ID_LENGTH) for i in ids]


def _content_row(row: ContentRow) -> dict[str, Any]:
    values = dict(row.__dict__)
    for name, limit in CONTENT_LIMITS.items():
        if len(values[name]) > limit:
            values[name] = bounded(values[name], limit)
    return values


def _slate_row(record: SlateRecord) -> dict[str, Any]:
    values = {name: record.__dict__[name] for name in SLATE_COLUMNS}
    for name in SLATE_ID_ARRAYS:
        values[name] = _bounded_ids(values[name])
    values["session_id"] = bounded(values["session_id"], ID_LENGTH)
    if values["invalid_items"]:
        values["invalid_items"] = {
            bounded(k, ID_LENGTH): bounded(v, 2 * ID_LENGTH) for k, v in values["invalid_items"].items()
        }
    return values


def _content_param(rows: Sequence[ContentRow]) -> str:
    return _json_param([_content_row(row) for row in rows])


def _slates_param(records: Sequence[SlateRecord]) -> str:
    return _json_param([_slate_row(record) for record in records])


def _batch_params(content: Sequence[ContentRow], records: Sequence[SlateRecord]) -> tuple[str, str]:
    return _content_param(content), _slates_param(records)


class _SeenContent:
    """Content versions this process stored recently: most slates repeat most items."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._keys: OrderedDict[tuple[str, str, str], None] = OrderedDict()

    def __contains__(self, key: tuple[str, str, str]) -> bool:
        return key in self._keys

    def new(self, rows: Iterable[ContentRow]) -> list[ContentRow]:
        fresh: dict[tuple[str, str, str], ContentRow] = {}
        for row in rows:
            key = (row.platform, row.item_id, row.text_hash)
            if key not in self._keys:
                fresh.setdefault(key, row)
        return list(fresh.values())

    def remember(self, rows: Iterable[ContentRow]) -> None:
        for row in rows:
            self._keys[(row.platform, row.item_id, row.text_hash)] = None
        while len(self._keys) > self.size:
            self._keys.popitem(last=False)


_seen = _SeenContent(settings.RANK_CONTENT_CACHE_SIZE)


def forget_stored_content() -> None:
    """Forget which content versions this process stored (a test whose database was emptied since)."""
    _seen._keys.clear()


def content_stored(platform: str, item_id: str, digest: str) -> bool:
    """Whether this process stored this content version recently (then a slate need not carry it)."""
    return (platform, item_id, digest) in _seen


class SlateWriter:
    """Groups slate writes from concurrent requests into batched transactions (one per event loop).

    Each batch is written within ``RANK_WRITE_TIMEOUT_S``; past that its connection is given up (a paused
    or unreachable database cannot hold the writer). A batch that PostgreSQL refuses for what a row holds
    is written again slate by slate, so only the refused slate fails. A slate whose request stopped waiting
    for it (``write_slate`` pushed it to Redis) is skipped if it has not been sent yet.
    """

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[SlateRecord, asyncio.Future[None]]] = asyncio.Queue()
        self.conn: psycopg.AsyncConnection[Any] | None = None
        self.task: asyncio.Task[None] | None = None
        self.closing = False

    def submit(self, record: SlateRecord) -> asyncio.Future[None]:
        if self.closing:
            raise RuntimeError("the slate writer is shutting down")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((record, future))
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run(), name="slate-writer")
        return future

    async def _run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < BATCH_SIZE and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                await self._store([entry for entry in batch if not entry[1].done()])
            except asyncio.CancelledError:  # closing: whoever still waits pushes their slate to Redis
                for _, future in batch:
                    if not future.done():
                        future.set_exception(RuntimeError("the slate writer closed"))
                raise

    async def _store(self, batch: Sequence[tuple[SlateRecord, asyncio.Future[None]]]) -> None:
        if not batch:
            return
        try:
            await within(self._write([record for record, _ in batch]), settings.RANK_WRITE_TIMEOUT_S)
        except Exception as exc:
            if len(batch) > 1 and _refused(exc):  # one slate's values, not the database: find which
                for entry in batch:
                    await self._store([entry])
                return
            if not _refused(exc):
                self.conn = None  # closed by ``_execute``, or abandoned to close when its query ends
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            for _, future in batch:
                if not future.done():
                    future.set_result(None)

    async def _write(self, records: Sequence[SlateRecord]) -> None:
        content = _seen.new(row for record in records for row in record.content)
        reused = self.conn is not None and not self.conn.closed
        try:
            await self._execute(content, records)
        except (psycopg.OperationalError, psycopg.InterfaceError):
            if not reused:
                raise
            await self._execute(content, records)  # the kept connection was broken (a restart): once more
        _seen.remember(content)

    async def _execute(self, content: Sequence[ContentRow], records: Sequence[SlateRecord]) -> None:
        if self.conn is None or self.conn.closed:
            self.conn = await connect(
                autocommit=True, application_name="prc-slate-writer", url=settings.RANK_WRITER_DATABASE_URL
            )
        conn = self.conn
        try:
            await conn.execute(INSERT_BATCH, _batch_params(content, records))
        except BaseException as exc:
            if not _refused(exc) or not isinstance(exc, Exception):
                if self.conn is conn:  # an abandoned write ends late: the writer may have a new one by then
                    self.conn = None
                with contextlib.suppress(Exception):
                    await conn.close()
            raise

    async def flush(self) -> None:
        """Write what is queued (shutdown); what cannot be written within the timeout goes to Redis."""
        self.closing = True
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        pending = []
        while not self.queue.empty():
            record, future = self.queue.get_nowait()
            if not future.done():
                pending.append((record, future))
                future.cancel()  # its request, if still waiting, pushes it to Redis itself
        for start in range(0, len(pending), BATCH_SIZE):
            records = [record for record, _ in pending[start : start + BATCH_SIZE]]
            try:
                await within(self._write(records), settings.RANK_WRITE_TIMEOUT_S)
            except Exception:
                logger.exception("slate write failed at shutdown; pushing %d slates to Redis", len(records))
                for record in records:
                    await push_fallback(record)

    async def close(self) -> None:
        await self.flush()
        if self.conn is not None:
            with contextlib.suppress(Exception):
                await self.conn.close()
        self.conn = None


def _refused(exc: BaseException) -> bool:
    """PostgreSQL refused the statement for what it holds (rather than being unreachable, slow or gone)."""
    return isinstance(exc, psycopg.Error) and not isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)


# One writer per event loop.
_writers: dict[asyncio.AbstractEventLoop, SlateWriter] = {}


def _writer() -> SlateWriter:
    return per_loop(_writers, SlateWriter)


async def write_slate(record: SlateRecord, *, timeout: float | None = None) -> None:
    """Store one slate, or push it to the Redis fallback list if the write fails or is not done within
    ``timeout`` seconds (default ``RANK_WRITE_TIMEOUT_S``) of being handed to the writer. Never raises.

    A slate pushed on time-out may still be stored by the writer later; its ``uid`` makes the drain's
    second insert a no-op.
    """
    timeout = settings.RANK_WRITE_TIMEOUT_S if timeout is None else timeout
    try:
        future = _writer().submit(record)
        done, _ = await asyncio.wait({future}, timeout=timeout)
        if not done:
            future.cancel()  # the writer skips it unless a batch already holds it
            raise TimeoutError("slate not stored in time")
        if future.cancelled():  # the shutdown flush took it over
            return
        future.result()
    except Exception:
        logger.exception("slate write failed; pushing to the Redis fallback list %s", fallback_key())
        prometheus.SLATE_WRITE_FAILURES.inc()
        await push_fallback(record)


# Writes whose request has been answered: kept referenced until they end, and awaited at shutdown.
_writes: set[asyncio.Task[None]] = set()


def start_write(record: SlateRecord) -> asyncio.Task[None]:
    """Start ``write_slate`` as a task that outlives its request if it has to.

    The request waits for it only until the end of its hold (plus ``RANK_WRITE_GRACE_S``): the hold never
    depends on the database, and a slow write keeps its slate instead of giving it up at the hold.
    """
    return track(write_slate(record))


def track(write: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """Run a coroutine that ends in a slate write as a task that shutdown waits for (``close_writer``)."""
    task = asyncio.ensure_future(write)
    _writes.add(task)
    task.add_done_callback(_writes.discard)
    return task


async def close_writer() -> None:
    """Flush and close this event loop's writer (shutdown, tests), then let unfinished writes end."""
    loop = asyncio.get_running_loop()
    mine = [task for task in _writes if task.get_loop() is loop]
    await asyncio.sleep(0)  # writes started just now hand their slates to the writer first
    writer = _writers.pop(loop, None)
    if writer is not None:
        await writer.close()
    if mine:  # an unattributed slate may still be looking its participant up before it writes
        await asyncio.wait(mine, timeout=settings.RANK_WRITE_TIMEOUT_S + settings.RANK_FALLBACK_TIMEOUT_S + 1)
    late = _writers.pop(loop, None)  # the writer such a slate started after the first one closed
    if late is not None:
        await late.close()
    client = _redis_clients.pop(loop, None)
    if client is not None:
        with contextlib.suppress(Exception):
            await client.aclose()


def fallback_key() -> str:
    return str(settings.RANK_FALLBACK_KEY)


def redis_url() -> str:
    return redis_py_url(settings.RANK_FALLBACK_REDIS_URL or settings.CELERY_BROKER_URL)


# One Redis client (and connection pool) per event loop for fallback pushes: a burst of failed writes must
# not open a connection each.
_redis_clients: dict[asyncio.AbstractEventLoop, Any] = {}


def _fallback_client() -> Any:
    import redis.asyncio as aredis

    timeout = settings.RANK_FALLBACK_TIMEOUT_S
    return per_loop(
        _redis_clients,
        lambda: aredis.Redis(
            connection_pool=aredis.BlockingConnectionPool.from_url(
                redis_url(), max_connections=8, timeout=timeout, socket_timeout=timeout, socket_connect_timeout=timeout
            )
        ),
    )


async def push_fallback(record: SlateRecord) -> None:
    try:
        await _fallback_client().rpush(fallback_key(), record.to_json())
    except Exception:
        logger.critical("slate LOST: neither PostgreSQL nor Redis took it: %s", record.to_json().decode()[:2000])


def fallback_lists() -> tuple[str, str, str]:
    """The fallback list, the drain's processing list and the list of slates PostgreSQL refused."""
    key = fallback_key()
    return key, key + ":processing", key + ":failed"


def drain_fallback(limit: int = 1000) -> int:
    """Move slates from the Redis fallback list into PostgreSQL; returns how many moved.

    A slate is removed from Redis only after its transaction commits (LMOVE to a
    processing list first), so a crash mid-way repeats rather than loses work.
    A slate that PostgreSQL refuses for what it contains (not because it is down)
    goes to ``<key>:failed`` with an error in the log, so it cannot block the
    slates behind it; nothing is deleted, except slates of participants whose
    data has been erased (withdrawal under delete terms): those are dropped, never
    written back, and swept from the failed list too. A slate answered before its
    participant could be looked up is attributed here first (``serving.attribute``)
    and dropped if nothing may be stored for that token.
    """
    import redis

    client = redis.Redis.from_url(redis_url())
    key = fallback_key()
    # One drain at a time: a second one would put the first one's slates in progress back on the list.
    lock = client.lock(key + ":lock", timeout=DRAIN_LOCK_S, blocking=False)
    if not lock.acquire():
        logger.info("another drain of %s is running; this one does nothing", key)
        return 0
    try:
        return _drain(client, key, limit)
    finally:
        with contextlib.suppress(redis.exceptions.LockError):
            lock.release()


def _drain(client: Any, key: str, limit: int) -> int:
    from django.db import DatabaseError, OperationalError

    _key, processing, failed = fallback_lists()
    # Anything left in processing by a crashed run goes first.
    while client.lmove(processing, key, "RIGHT", "LEFT"):
        pass
    erased = _ErasedParticipants()
    moved = 0
    while moved < limit:
        raw = client.lmove(key, processing, "LEFT", "RIGHT")
        if raw is None:
            break
        try:
            record = SlateRecord.from_json(raw)
            if record.token_hash and not record.participant_id:
                attributed = _attribute(record)
                if attributed is None:
                    client.lrem(processing, 1, cast(str, raw))
                    logger.info("dropped an unattributed fallback slate: nothing may be stored for its token")
                    continue
                record = attributed
            if record.participant_id in erased:
                client.lrem(processing, 1, cast(str, raw))
                logger.info("dropped a fallback slate of an erased participant")
                continue
            write_slates_sync([record])
        except OperationalError:
            raise  # the database is unavailable: retry later, in order
        except (DatabaseError, ValueError, TypeError):
            logger.exception("slate refused by PostgreSQL; kept in Redis list %s", failed)
            with client.pipeline(transaction=True) as pipe:
                pipe.lrem(processing, 1, cast(str, raw))
                pipe.rpush(failed, raw)
                pipe.execute()
            continue
        client.lrem(processing, 1, cast(str, raw))  # bytes, as stored
        moved += 1
    remove_fallback_slates(client, [failed], erased)
    return moved


def _attribute(record: SlateRecord) -> SlateRecord | None:
    from rankers import serving  # serving writes through this module

    enrolment = serving.enrolments_for_token_hashes_sync([record.token_hash]).get(record.token_hash)
    return serving.attribute(record, enrolment)


class _ErasedParticipants:
    """Which public ids belong to erased participants; each id is looked up once per run."""

    def __init__(self) -> None:
        self._known: dict[str, bool] = {}

    def __contains__(self, public_id: str) -> bool:
        if public_id not in self._known:
            erased = Participant.objects.filter(public_id=public_id, erased_at__isnull=False).exists()
            self._known[public_id] = erased
        return self._known[public_id]


def remove_fallback_slates(
    client: Any, lists: Sequence[str], participants: Any, token_hashes: Collection[str] = ()
) -> int:
    """Remove from the Redis ``lists`` every slate whose participant is in ``participants`` or, not yet
    attributed, was answered for one of ``token_hashes``; returns how many."""
    removed = 0
    for name in lists:
        doomed = set()
        for raw in client.lrange(name, 0, -1):
            try:
                slate = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if slate.get("participant_id", "") in participants or slate.get("token_hash") in token_hashes:
                doomed.add(raw)
        for raw in doomed:
            removed += int(client.lrem(name, 0, raw))
    return removed


def erase_fallback(public_id: str, token_hashes: Collection[str] = ()) -> int:
    """Remove one participant's slates from every fallback list, those not yet attributed to them included
    (found by their extension tokens' hashes); returns how many. Raises if Redis is down."""
    import redis

    client = redis.Redis.from_url(redis_url())
    return remove_fallback_slates(client, fallback_lists(), {public_id}, frozenset(token_hashes))


def write_slates_sync(records: Sequence[SlateRecord]) -> None:
    """The same statement through Django's connection (Celery tasks, backfills)."""
    content = [row for record in records for row in record.content]
    with connections["default"].cursor() as cursor:
        cursor.execute(INSERT_BATCH, _batch_params(content, records))


def iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
