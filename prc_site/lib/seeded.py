"""Reproducible draws from a recorded seed, with no global state and no dependence on ``random``.

Every seeded choice in the platform (arm allocation, lottery winners, the week's in-feed question)
derives its numbers here: HMAC-SHA256(seed, message), so the same seed and message give the same
number on any machine, years later, and anyone holding the seed can redo the draw.
"""

from __future__ import annotations

import hashlib
import hmac


def seeded_digest(seed: str, message: str) -> bytes:
    return hmac.new(seed.encode(), message.encode(), hashlib.sha256).digest()


def seeded_int(seed: str, message: str, upper: int) -> int:
    """A deterministic integer in [0, upper); the modulo bias is below 2**-60 for any realistic ``upper``."""
    if upper <= 0:
        raise ValueError("upper must be positive")
    return int.from_bytes(seeded_digest(seed, message)[:8], "big") % upper
