"""A small open-loop HTTP/1.1 load generator on asyncio streams.

Open loop: request i is sent at start + i / rate whether or not earlier ones
have finished, so a slow server shows up as latency instead of a lower send
rate (the coordinated-omission trap of closed-loop tools such as wrk).
Connections are kept alive and reused; a new one is opened whenever all are busy.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Result:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    wall_s: float = 0.0
    min_latency_ms: float = 0.0

    def summary(self) -> dict[str, float | int | dict[int, int]]:
        lat = sorted(self.latencies_ms)

        def pct(p: float) -> float:
            return round(lat[min(len(lat) - 1, int(p / 100 * len(lat)))], 1) if lat else float("nan")

        return {
            "sent": self.sent,
            "answered": len(lat),
            "errors": self.errors,
            "error_kinds": self.error_kinds,
            "statuses": dict(sorted(self.statuses.items())),
            "achieved_rps": round(len(lat) / self.wall_s, 1) if self.wall_s else 0.0,
            "p50_ms": pct(50),
            "p95_ms": pct(95),
            "p99_ms": pct(99),
            "max_ms": round(lat[-1], 1) if lat else float("nan"),
            "min_ms": round(lat[0], 1) if lat else float("nan"),
            "mean_ms": round(statistics.fmean(lat), 1) if lat else float("nan"),
        }


class _Pool:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def get(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.idle:
            return self.idle.pop()
        return await asyncio.open_connection(self.host, self.port)

    def put(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        self.idle.append(conn)


async def _exchange(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], raw: bytes) -> int | None:
    """Send one request and read its answer; None if the server had already closed this connection."""
    reader, writer = conn
    writer.write(raw)
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        return None
    status = int(status_line.split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    await reader.readexactly(length)
    return status


async def _one(pool: _Pool, raw: bytes, result: Result) -> None:
    start = time.perf_counter()
    try:
        conn = await pool.get()
        status = await _exchange(conn, raw)
        if status is None:  # an idle keep-alive connection the server closed: retry once on a new one, as clients do
            conn = await asyncio.open_connection(pool.host, pool.port)
            status = await _exchange(conn, raw)
        if status is None:
            raise ConnectionResetError("server closed the connection without answering")
        result.latencies_ms.append((time.perf_counter() - start) * 1000)
        result.statuses[status] = result.statuses.get(status, 0) + 1
        pool.put(conn)
    except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
        result.errors += 1
        result.error_kinds[type(exc).__name__] = result.error_kinds.get(type(exc).__name__, 0) + 1


def build_request(host: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}", "Connection: keep-alive"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def run_open_loop(
    host: str,
    port: int,
    make_request: Callable[[int], bytes],
    *,
    rate: float,
    duration_s: float,
    offset_s: float = 0.0,
) -> Result:
    """Send `rate` requests per second for `duration_s` seconds, the first `offset_s` after the start (so that
    streams of one rate can interleave instead of arriving together); wait for every answer."""
    pool, result, tasks = _Pool(host, port), Result(), []
    total = int(rate * duration_s)
    start = time.perf_counter()
    for i in range(total):
        delay = start + offset_s + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_one(pool, make_request(i), result)))
        result.sent += 1
    await asyncio.gather(*tasks)
    result.wall_s = time.perf_counter() - start
    return result


async def run_burst(host: str, port: int, make_request: Callable[[int], bytes], *, count: int) -> Result:
    """Open `count` connections first, then send one request on each at the same moment."""
    pool, result = _Pool(host, port), Result()
    conns = await asyncio.gather(*(asyncio.open_connection(host, port) for _ in range(count)))
    pool.idle.extend(conns)
    start = time.perf_counter()
    await asyncio.gather(*(_one(pool, make_request(i), result) for i in range(count)))
    result.sent = count
    result.wall_s = time.perf_counter() - start
    return result
