"""Race tests: run the same work in several threads released at once, each on its own database connection; and
work in a forked child, with a time limit."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

from django.db import connection


def run_at_once(n: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(i)`` in ``n`` threads released together, each on its own database connection."""
    barrier = threading.Barrier(n)
    results: list[object] = []
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=60)
            results.append(work(i))
        except BaseException as exc:  # a thread's failure must fail the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


def exit_code_in_fork(work: Callable[[], bool], *, timeout_s: float = 20) -> int | None:
    """Run ``work`` in a forked child: its exit code (0 when ``work`` returned True), or None when the child was
    still running after ``timeout_s`` (then it is killed), so that a child that hangs fails the test."""
    pid = os.fork()
    if pid == 0:  # the child: never returns to pytest
        code = 1
        try:
            code = 0 if work() else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout_s
    while (ended := os.waitpid(pid, os.WNOHANG)) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.05)
    return os.waitstatus_to_exitcode(ended[1])
