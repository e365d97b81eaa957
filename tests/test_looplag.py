"""The event-loop lag monitor: a loop held up by work reads as behind, and catches up once the work is gone."""

from __future__ import annotations

import asyncio
import time

from prc_site.lib.looplag import LoopLag, loop_lag


def test_each_lateness_moves_the_reading_a_quarter_of_the_way_and_early_counts_as_on_time() -> None:
    lag = LoopLag.__new__(LoopLag)  # the arithmetic alone, without a loop
    lag.smoothing, lag.late_ms = 0.25, 0.0
    lag.observe(100.0)
    assert lag.behind_ms() == 25.0
    lag.observe(-3.0)
    assert lag.behind_ms() == 18.75


async def test_a_loop_held_up_by_work_reads_as_behind_and_catches_up_once_it_is_free() -> None:
    lag = LoopLag(asyncio.get_running_loop(), interval_s=0.01)
    time.sleep(0.3)  # CPU-bound work on the loop: no timer can fire meanwhile
    await asyncio.sleep(0.001)  # the overdue timer fires first, 290 ms late
    behind = lag.behind_ms()
    assert behind > 50  # a quarter of it: past the ranking path's default limit (RANK_SHED_LAG_MS, 25 ms)

    deadline = time.monotonic() + 10
    while lag.behind_ms() > behind / 4 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert lag.behind_ms() <= behind / 4


async def test_each_event_loop_has_one_monitor() -> None:
    assert loop_lag() is loop_lag()
    assert loop_lag().loop is asyncio.get_running_loop()
