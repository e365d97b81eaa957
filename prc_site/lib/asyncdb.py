"""Async PostgreSQL connections for the ranking hot path, a small pool per event loop.

Django's async ORM runs each query on a worker thread; ``/rank`` needs one read
and one batched write per request at hundreds of requests per second, so it
talks to psycopg's ``AsyncConnection`` on the event loop instead. Connections
use Django's settings for the default database (the test database under pytest).

No step waits without a deadline (the ranking path must answer at its hold even
when PostgreSQL is stopped, paused or slow): new connections have libpq's
``connect_timeout`` and a server-side ``statement_timeout``, and callers bound
whole operations with ``within``, which gives up at once rather than waiting
for psycopg to cancel the query on a server that may never answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

import psycopg
from django.conf import settings
from django.db import connections


def connection_kwargs() -> dict[str, Any]:
    """psycopg keyword arguments for Django's default database."""
    params = connections["default"].settings_dict
    kwargs = {
        "dbname": params["NAME"],
        "user": params.get("USER") or None,
        "password": params.get("PASSWORD") or None,
        "host": params.get("HOST") or None,
        "port": params.get("PORT") or None,
    }
    # libpq parameters given as OPTIONS (a DATABASE_URL's query string: host, sslmode...), less Django's own.
    options = {k: v for k, v in params.get("OPTIONS", {}).items() if k not in DJANGO_ONLY_OPTIONS}
    return {**options, **{key: value for key, value in kwargs.items() if value is not None}}


DJANGO_ONLY_OPTIONS = frozenset({"isolation_level", "server_side_binding", "pool", "assume_role", "cursor_factory"})


def hot_path_options() -> str:
    """Server settings for every hot-path connection (see HOT_PATH_OPTIONS and the statement timeout)."""
    return f"{HOT_PATH_OPTIONS} -c statement_timeout={int(settings.RANK_DB_STATEMENT_TIMEOUT_MS)}"


# The hot path runs a few fixed statements (the participant lookup, the slate inserts) whose best plan
# does not depend on their parameters. psycopg prepares them after a few runs, but PostgreSQL's default
# plan_cache_mode keeps choosing custom plans for the lookup and plans it again on every call, which cost
# more than running it (about 0.45 of its 0.9 ms here; see docs/benchmarks.md).
HOT_PATH_OPTIONS = "-c plan_cache_mode=force_generic_plan"


async def connect(
    *, autocommit: bool, application_name: str = "prc-rank", url: str = ""
) -> psycopg.AsyncConnection[Any]:
    """A hot-path connection to ``url`` (a libpq URL or conninfo), by default Django's default database."""
    kwargs = {} if url else connection_kwargs()
    options = f"{kwargs.pop('options', '')} {hot_path_options()}".strip()
    return await psycopg.AsyncConnection.connect(
        url,
        **kwargs,
        autocommit=autocommit,
        options=options,
        # libpq counts whole seconds and takes at least 2; callers bound the connect more tightly with ``within``.
        connect_timeout=max(2, math.ceil(settings.RANK_DB_CONNECT_TIMEOUT_S)),
        application_name=application_name,
    )


T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# Operations given up by ``within``; referenced until they end, so that their errors are read, not logged as lost.
_abandoned: set[asyncio.Future[Any]] = set()


async def within(operation: Awaitable[T], seconds: float) -> T:
    """Await ``operation`` for at most ``seconds``; past that, raise TimeoutError at once.

    ``asyncio.wait_for`` would wait for the cancelled operation to end, and psycopg answers a
    cancellation by asking the server to cancel the query and waiting up to ten seconds for that:
    a paused server would hold the caller. Here the operation is cancelled and left to end in the
    background (its connection is then closed, see ``LoopPool.connection``).
    """
    task = asyncio.ensure_future(operation)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        _abandon(task)
        raise
    if task in done:
        return task.result()
    _abandon(task)
    raise TimeoutError(f"gave up after {seconds:.3g} s")


def _abandon(task: asyncio.Future[Any]) -> None:
    task.cancel()
    _abandoned.add(task)
    task.add_done_callback(_forget)


def _forget(task: asyncio.Future[Any]) -> None:
    _abandoned.discard(task)
    if not task.cancelled():
        task.exception()  # read, so that asyncio does not report it as never retrieved


class LoopPool:
    """At most ``size`` autocommit connections, reused across requests on one event loop."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.idle: list[psycopg.AsyncConnection[Any]] = []
        self.open = 0
        self.available = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        conn = await self._acquire()
        try:
            yield conn
        except (psycopg.OperationalError, psycopg.InterfaceError, asyncio.CancelledError) as exc:
            await self._discard(conn)  # broken, or abandoned mid-query: its state is unknown
            if not isinstance(exc, asyncio.CancelledError):
                # A server restart breaks every connection opened before it: a retry must not find the next one.
                await self.close()
            raise
        except BaseException:
            await self._release(conn)  # kept only if it is idle and outside a transaction
            raise
        else:
            await self._release(conn)

    async def _acquire(self) -> psycopg.AsyncConnection[Any]:
        async with self.available:
            while not self.idle and self.open >= self.size:
                await self.available.wait()
            if self.idle:
                return self.idle.pop()
            self.open += 1
        try:
            return await connect(autocommit=True)
        except BaseException:
            await self._discard(None)
            raise

    async def _release(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if conn.closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            await self._discard(conn)
            return
        async with self.available:
            self.idle.append(conn)
            self.available.notify()

    async def _discard(self, conn: psycopg.AsyncConnection[Any] | None) -> None:
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()
        async with self.available:
            self.open -= 1
            self.available.notify()

    async def close(self) -> None:
        while self.idle:
            await self._discard(self.idle.pop())


def per_loop(registry: dict[asyncio.AbstractEventLoop, T], factory: Callable[[], T]) -> T:
    """The running event loop's entry in ``registry``, made on first use.

    A dict rather than a WeakKeyDictionary: uvloop's loops are not weak-referenceable.
    Entries of closed loops are dropped whenever a new one is made.
    """
    loop = asyncio.get_running_loop()
    value = registry.get(loop)
    if value is None:
        for stale in [other for other in registry if other.is_closed()]:
            del registry[stale]
        value = registry[loop] = factory()
    return value


_pools: dict[asyncio.AbstractEventLoop, LoopPool] = {}


def loop_pool(size: int = 4) -> LoopPool:
    """This event loop's connection pool."""
    return per_loop(_pools, lambda: LoopPool(size))


class Coalescer(Generic[K, V]):
    """Lookups that arrive in the same event-loop turn share one batched fetch.

    ``get(key)`` queues the key and schedules one flush for the end of the
    current turn (``call_soon``), so every request that reaches its lookup
    while the loop works through the ready tasks joins the same query. Under a
    burst of hundreds of requests this turns hundreds of round trips into a
    few; a lone request still costs one round trip and no waiting. ``fetch``
    gets the distinct keys and returns what it found; a missing key means None.
    An error of ``fetch`` reaches every caller of that batch.
    """

    def __init__(self, fetch: Callable[[Sequence[K]], Awaitable[dict[K, V]]]) -> None:
        self.fetch = fetch
        self.pending: dict[K, list[asyncio.Future[V | None]]] | None = None
        self.batches = 0  # fetches run, for tests and metrics
        self.running: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks

    async def get(self, key: K) -> V | None:
        loop = asyncio.get_running_loop()
        if self.pending is None:
            self.pending = {}
            loop.call_soon(self._flush)
        future: asyncio.Future[V | None] = loop.create_future()
        self.pending.setdefault(key, []).append(future)
        return await future

    def _flush(self) -> None:
        batch, self.pending = self.pending or {}, None
        self.batches += 1
        task = asyncio.ensure_future(self._resolve(batch))
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    async def _resolve(self, batch: dict[K, list[asyncio.Future[V | None]]]) -> None:
        try:
            found = await self.fetch(list(batch))
        except BaseException as exc:  # every waiter sees the failure; nothing is left hanging
            for futures in batch.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for key, futures in batch.items():
            for future in futures:
                if not future.done():
                    future.set_result(found.get(key))


async def close_loop_pool() -> None:
    pool = _pools.pop(asyncio.get_running_loop(), None)
    if pool is not None:
        await pool.close()
