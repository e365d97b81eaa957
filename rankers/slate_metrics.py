"""Per-slate measures of what a ranker did. Pure functions over id lists.

Normalized rank change is the paper's: "the absolute change in ranking position for a post, divided by
the length of the slate (as given in table S11) ... Added and deleted posts are not counted in this
metric." Only items the arm could move count (pinned items and items past the slate size cannot
move, and would dilute the mean). Rank-biased overlap is this platform's addition, not the paper's.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
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


def normalized_rank_change(
    original: Sequence[str],
    returned: Sequence[str],
    movable: Collection[str] | None = None,
    slate_length: int | None = None,
) -> float | None:
    """Mean over the movable items kept of |new rank - old rank| / slate length; None for an empty slate.

    ``movable`` defaults to every original item and ``slate_length`` to the original length. Ranks are
    positions in the whole request and the whole answer, so an insertion above an item moves it.
    """
    length = slate_length if slate_length is not None else len(original)
    if not original or length <= 0:
        return None
    counted = set(original) if movable is None else set(movable)
    new_rank = {item_id: index for index, item_id in enumerate(returned)}
    moves = [abs(new_rank[i] - old) for old, i in enumerate(original) if i in counted and i in new_rank]
    if not moves:
        return 0.0
    return sum(moves) / len(moves) / length


def rank_biased_overlap(a: Sequence[str], b: Sequence[str], p: float = 0.9) -> float | None:
    """Extrapolated rank-biased overlap of two lists, of equal or unequal length (Webber et al. 2010, eq. 32).

    With s and l the shorter and longer lengths and X_d the overlap at depth d (the shorter list counts
    whole below its end):

        RBO_ext = (1-p)/p * (sum_{d=1..l} X_d/d p^d + sum_{d=s+1..l} X_s (d-s)/(s d) p^d)
                  + ((X_l - X_s)/l + X_s/s) p^l

    which is eq. 32 of the paper, and its equal-length form when s = l. 1.0 for identical lists, 0.0 for
    disjoint ones; None when both are empty (and 0.0 when only one is).
    """
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    s, depth = len(short), len(long_)
    if depth == 0:
        return None
    if s == 0:
        return 0.0
    seen_short: set[str] = set()
    seen_long: set[str] = set()
    overlap = 0
    overlap_at_s = 0
    weighted = 0.0
    for d in range(1, depth + 1):
        x = short[d - 1] if d <= s else None
        y = long_[d - 1]
        if x is not None and x == y:
            overlap += 1
        else:
            if x is not None:
                overlap += x in seen_long
                seen_short.add(x)
            overlap += y in seen_short
            seen_long.add(y)
        if d == s:
            overlap_at_s = overlap
        weighted += overlap / d * p**d
        if d > s:
            weighted += overlap_at_s * (d - s) / (s * d) * p**d
    tail = ((overlap - overlap_at_s) / depth + overlap_at_s / s) * p**depth
    return (1 - p) / p * weighted + tail


def slate_change(
    original: Sequence[str],
    returned: Sequence[str],
    movable: Collection[str] | None = None,
    slate_length: int | None = None,
) -> SlateChange:
    if list(original) == list(returned):  # the common case (control, baseline, fallbacks): nothing changed
        n = len(original)
        return SlateChange(nrc=0.0 if n else None, rbo=1.0 if n else None, n_items=n, n_added=0, n_deleted=0,
                           added_ids=[], deleted_ids=[])  # fmt: skip
    return _change(original, returned, movable, slate_length)


def _change(
    original: Sequence[str],
    returned: Sequence[str],
    movable: Collection[str] | None = None,
    slate_length: int | None = None,
) -> SlateChange:
    before, after = set(original), set(returned)
    added = [i for i in returned if i not in before]
    deleted = [i for i in original if i not in after]
    return SlateChange(
        nrc=normalized_rank_change(original, returned, movable, slate_length),
        rbo=rank_biased_overlap(original, returned),
        n_items=len(original),
        n_added=len(added),
        n_deleted=len(deleted),
        added_ids=added,
        deleted_ids=deleted,
    )
