"""Thread pools that a forked process can use.

A forked child has one thread: the one that called ``fork``. A ``ThreadPoolExecutor`` it inherits still counts
its parent's threads (or an idle one) as its own, so it starts none and queues work that never runs. The
rehearsal's forked workers (``simulate_study --workers N``) waited forever in ``/rank`` that way, on asgiref's
thread for ``sync_to_async`` and on the ranking pool, once the parent had used them. So every pool a forked
child may inherit starts over in the child: ours are ``ThreadPool``, and ``renew_asgiref_executors`` (registered
at fork by ``PrcSiteConfig.ready``) replaces asgiref's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from asgiref.sync import AsyncToSync, SyncToAsync

P = ParamSpec("P")
T = TypeVar("T")


class ThreadPool(Executor):
    """A ``ThreadPoolExecutor`` that a forked child gets new and empty. For pools that live as long as the process
    (a module's): the fork hook keeps the pool alive."""

    def __init__(self, max_workers: int, thread_name_prefix: str) -> None:
        self.max_workers, self.thread_name_prefix = max_workers, thread_name_prefix
        self._pool = self._new()
        os.register_at_fork(after_in_child=self._start_over)

    def _new(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix=self.thread_name_prefix)

    def _start_over(self) -> None:
        self._pool = self._new()

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def renew_asgiref_executors() -> None:
    """In a forked child: a new thread for thread-sensitive ``sync_to_async`` calls, and no per-context executors
    inherited from the parent (asgiref makes a new one for a context that has none)."""
    SyncToAsync.single_thread_executor = ThreadPoolExecutor(max_workers=1)
    SyncToAsync.context_to_thread_executor.clear()
    AsyncToSync.context_to_thread_executor.clear()
