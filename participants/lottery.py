"""The lottery draw as a pure function: who wins, from a recorded seed and the list of eligible ids.

1. Each eligible id gets a ticket number, HMAC-SHA256(seed, "lottery|<id>") (``seeded_digest``).
2. The ``count`` lowest tickets win; ties are impossible in practice and broken by the id.

A ticket depends only on the seed and the id, never on the list's order or on who else is
eligible, so the draw can be redone by anyone from the ``LotteryDraw`` record, and adding or
removing one person cannot change whether anyone else wins, except by displacing them.
"""

from __future__ import annotations

from collections.abc import Sequence

from prc_site.lib.seeded import seeded_digest


def ticket(seed: str, public_id: str) -> bytes:
    return seeded_digest(seed, f"lottery|{public_id}")


def draw_winners(seed: str, eligible: Sequence[str], count: int) -> list[str]:
    """The winning ids (at most ``count``, fewer when fewer are eligible), in ticket order."""
    if count < 0:
        raise ValueError("count must be >= 0")
    ranked = sorted(set(eligible), key=lambda public_id: (ticket(seed, public_id), public_id))
    return ranked[:count]
