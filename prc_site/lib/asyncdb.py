"""Async PostgreSQL connections for the ranking hot path, a small pool per event loop.

Django's async ORM runs each query on a worker thread; ``/rank`` needs one read
and one batched write per request at hundreds of requests per second, so it
talks to psycopg's ``AsyncConnection`` on the event loop instead. Connections
use Django's settings for the default database (the test database under pytest).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import psycopg
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
    return {key: value for key, value in kwargs.items() if value is not None}


async def connect(*, autocommit: bool) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(**connection_kwargs(), autocommit=autocommit)


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
        except (psycopg.OperationalError, psycopg.InterfaceError):
            await self._discard(conn)
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


_pools: dict[asyncio.AbstractEventLoop, LoopPool] = {}


def loop_pool(size: int = 4) -> LoopPool:
    """This event loop's pool (uvloop's loops are not weak-referenceable; closed ones are dropped)."""
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None:
        for stale in [other for other in _pools if other.is_closed()]:
            del _pools[stale]
        pool = _pools[loop] = LoopPool(size)
    return pool


async def close_loop_pool() -> None:
    pool = _pools.pop(asyncio.get_running_loop(), None)
    if pool is not None:
        await pool.close()
