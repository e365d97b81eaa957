"""How far behind an event loop runs: a timer asks to fire every ``interval_s`` and notes how late it fired.

Every held request's answer is a timer on its web process's event loop. When the loop has more work than the
CPU it gets (a burst of treatment work, or a machine whose cores other processes take), every timer fires late,
the holds' too. ``LoopLag.behind_ms`` says so while it happens (a smoothed lateness of the timer), so that the
ranking path can shed work before the holds suffer. A plain timer, not a task: a closed loop drops it silently.
"""

from __future__ import annotations

import asyncio

from prc_site.lib.asyncdb import per_loop


class LoopLag:
    """The smoothed lateness, in ms, of a timer on ``loop`` that asks to fire every ``interval_s``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, interval_s: float = 0.02, smoothing: float = 0.25) -> None:
        self.loop = loop
        self.interval_s = interval_s
        self.smoothing = smoothing  # each observation's weight: a one-off stall fades within a few intervals
        self.late_ms = 0.0
        due = loop.time() + interval_s
        loop.call_at(due, self._fire, due)

    def observe(self, late_ms: float) -> None:
        self.late_ms += self.smoothing * (max(0.0, late_ms) - self.late_ms)

    def behind_ms(self) -> float:
        return self.late_ms

    def _fire(self, due: float) -> None:
        now = self.loop.time()
        self.observe((now - due) * 1000)
        self.loop.call_at(now + self.interval_s, self._fire, now + self.interval_s)


_monitors: dict[asyncio.AbstractEventLoop, LoopLag] = {}


def loop_lag() -> LoopLag:
    """The running loop's monitor, started on first use."""
    return per_loop(_monitors, lambda: LoopLag(asyncio.get_running_loop()))
