"""Per-slate measures of what a ranker did. Pure functions over id lists."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SlateChange:
    nrc: float | None
    rbo: float | None
    n_items: int
    n_added: int
    n_deleted: int
    added_ids: list[str]
    deleted_ids: list[str]


def normalized_rank_change(original: Sequence[str], returned: Sequence[str]) -> float | None:
    """Mean over kept items of |new rank - old rank| / slate length; None for an empty slate.

    Added and deleted items are excluded; the slate length is the original one.
    """
    if not original:
        return None
    new_rank = {item_id: index for index, item_id in enumerate(returned)}
    moves = [abs(new_rank[i] - old) for old, i in enumerate(original) if i in new_rank]
    if not moves:
        return 0.0
    return sum(moves) / len(moves) / len(original)


def rank_biased_overlap(a: Sequence[str], b: Sequence[str], p: float = 0.9) -> float | None:
    """Extrapolated rank-biased overlap (Webber et al. 2010, eq. 32) to the longer list's depth.

    1.0 for identical lists, 0.0 for disjoint ones; None when both are empty.
    """
    depth = max(len(a), len(b))
    if depth == 0:
        return None
    seen_a: set[str] = set()
    seen_b: set[str] = set()
    overlap = 0
    weighted = 0.0
    for d in range(1, depth + 1):
        x = a[d - 1] if d <= len(a) else None
        y = b[d - 1] if d <= len(b) else None
        if x is not None and x == y:
            overlap += 1
        else:
            if x is not None:
                overlap += x in seen_b
                seen_a.add(x)
            if y is not None:
                overlap += y in seen_a
                seen_b.add(y)
        weighted += overlap / d * p**d
    return overlap / depth * p**depth + (1 - p) / p * weighted


def slate_change(original: Sequence[str], returned: Sequence[str]) -> SlateChange:
    if list(original) == list(returned):  # the common case (control, baseline, fallbacks): nothing changed
        n = len(original)
        return SlateChange(nrc=0.0 if n else None, rbo=1.0 if n else None, n_items=n, n_added=0, n_deleted=0,
                           added_ids=[], deleted_ids=[])  # fmt: skip
    return _change(original, returned)


def _change(original: Sequence[str], returned: Sequence[str]) -> SlateChange:
    before, after = set(original), set(returned)
    added = [i for i in returned if i not in before]
    deleted = [i for i in original if i not in after]
    return SlateChange(
        nrc=normalized_rank_change(original, returned),
        rbo=rank_biased_overlap(original, returned),
        n_items=len(original),
        n_added=len(added),
        n_deleted=len(deleted),
        added_ids=added,
        deleted_ids=deleted,
    )
