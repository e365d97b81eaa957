"""Token buckets in process memory: one per participant on ``/rank``, one per client address for tokens
nobody holds (and for ``/join``).

One web node needs nothing more: a flood from one token is refused with 429
while every other token keeps its own budget. Behind a load balancer with
several nodes, either route by token (sticky hashing keeps each bucket on one
node) or move the bucket to Redis with one atomic Lua script per request
(``tokens, stamp = HMGET key; refill; decrement; HSET; PEXPIRE``), the same
arithmetic as ``TokenBucket.allow``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class TokenBucket:
    """``burst`` requests at once, then ``rate`` a second, per key; the least recently used of more than
    ``max_keys`` keys is forgotten (so only keys worth a bucket should reach it: see ``rankers.endpoints``)."""

    def __init__(
        self, rate: float, burst: float, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def allow(self, key: str, now: float | None = None) -> bool:
        """Take one token from ``key``'s bucket; False when it is empty. Single-threaded (event loop)."""
        now = self.clock() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=self.burst, stamp=now)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    def is_empty(self, key: str, now: float | None = None) -> bool:
        """Whether ``allow(key)`` would refuse now, without taking a token or making a bucket."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return False
        now = self.clock() if now is None else now
        return min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate) < 1

    def __len__(self) -> int:
        return len(self._buckets)


_shared: dict[tuple[float, float, int], TokenBucket] = {}


def shared_bucket(rate: float, burst: float, max_keys: int = 100_000) -> TokenBucket:
    """The process's limiter for these settings (a test that changes them gets a fresh one)."""
    key = (rate, burst, max_keys)
    bucket = _shared.get(key)
    if bucket is None:
        bucket = _shared[key] = TokenBucket(rate=rate, burst=burst, max_keys=max_keys)
    return bucket


def forget_all() -> None:
    """Drop every shared limiter's buckets (tests start each case with full buckets)."""
    _shared.clear()
