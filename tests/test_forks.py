"""Thread pools a forked child can use (``prc_site.lib.forks``)."""

from __future__ import annotations

import asyncio
import threading

from asgiref.sync import sync_to_async

from prc_site.lib import forks
from tests.threads import exit_code_in_fork


def test_a_pool_used_before_a_fork_runs_the_childs_work_in_a_thread_of_the_child() -> None:
    pool = forks.ThreadPool(max_workers=2, thread_name_prefix="forks-test")
    assert pool.submit(lambda: 1).result(timeout=5) == 1  # the parent's thread now exists

    def in_child() -> bool:
        return pool.submit(threading.current_thread).result(timeout=5).name.startswith("forks-test")

    assert exit_code_in_fork(in_child, timeout_s=15) == 0
    pool.shutdown()


def test_thread_sensitive_sync_code_runs_in_a_forked_child_after_the_parent_ran_some() -> None:
    """asgiref's one thread for thread-sensitive ``sync_to_async`` calls is renewed in the child (the app
    registers the hook when Django starts)."""

    def name() -> str:
        return threading.current_thread().name

    parents = asyncio.run(sync_to_async(name)())
    assert parents != threading.current_thread().name

    def in_child() -> bool:
        return asyncio.run(sync_to_async(name)()) != threading.current_thread().name

    assert exit_code_in_fork(in_child, timeout_s=15) == 0
