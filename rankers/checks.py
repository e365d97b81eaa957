"""Checks on a ranker's output before any participant sees it. Pure.

Each check returns a fallback reason (a short code recorded in the slate log
and in metrics) or None when the output may be shown. Caps are not a check:
``apply_caps`` trims an output that inserts or removes too much to the arm's
first items, so a cap never throws away the whole treatment.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from participants.paper import CapRule
from rankers.plugins.base import NewItem, RankResult
from rankers.validation import is_http_url

# Codes for every way ranking can fall back to the original order.
TIMEOUT = "timeout"
EXCEPTION = "exception"
BAD_OUTPUT = "bad_output"
DUPLICATE_IDS = "duplicate_ids"
UNKNOWN_IDS = "unknown_ids"
CAP_EXCEEDED = "cap_exceeded"  # no longer produced (outputs over their caps are trimmed); kept for older slates
BAD_INSERTED_ITEM = "bad_inserted_item"
EMPTY_RESULT = "empty_result"
UNKNOWN_RANKER = "unknown_ranker"
LOOKUP_FAILED = "lookup_failed"  # the participant could not be looked up in time: untouched feed, default hold
UNSCORED = "unscored"  # the arm's ranker reads attributes and the scorer scored none of the slate's items
CANDIDATES_UNAVAILABLE = "candidates_unavailable"  # an inserting arm's pool or queue could not be read in time
OVERLOADED = "overloaded"  # the web process's event loop was running behind: treatment shed to keep the hold


NO_SHARE_RULE = CapRule(None, None)


@dataclass(frozen=True)
class Caps:
    """Most items one slate may gain and lose: absolute ceilings (None: none) and the arm's share rule."""

    max_inserted: int | None = None
    max_deleted: int | None = None
    rule: CapRule = NO_SHARE_RULE

    def deletions_allowed(self, n_rankable: int) -> int | None:
        return _smallest(self.max_deleted, self.rule.max_deleted(n_rankable))

    def insertions_allowed(self, n_kept: int) -> int | None:
        return _smallest(self.max_inserted, self.rule.max_inserted(n_kept))


def _smallest(*limits: int | None) -> int | None:
    given = [limit for limit in limits if limit is not None]
    return min(given) if given else None


def check_result(result: object, known_ids: Sequence[str]) -> str | None:
    if not isinstance(result, RankResult) or not isinstance(result.ranked_ids, list):
        return BAD_OUTPUT
    ranked = result.ranked_ids
    if not all(isinstance(i, str) for i in ranked) or not all(isinstance(n, NewItem) for n in result.new_items):
        return BAD_OUTPUT
    if len(set(ranked)) != len(ranked):
        return DUPLICATE_IDS
    known = set(known_ids)
    new_by_id = {n.id: n for n in result.new_items}
    if any(i not in known and i not in new_by_id for i in ranked):
        return UNKNOWN_IDS
    inserted = [new_by_id[i] for i in ranked if i not in known]
    if any(not is_public_post(n) for n in inserted):
        return BAD_INSERTED_ITEM
    if known and not ranked:
        return EMPTY_RESULT
    return None


def apply_caps(result: RankResult, known_ids: Sequence[str], caps: Caps, *, n_items: int) -> tuple[RankResult, bool]:
    """Trim a checked result to the arm's caps; (result, whether it was capped).

    1. Removals: the first ones, in the request's order, up to the cap stay removed; each later one goes
       back right after the nearest item before it in the request that is still in the answer.
    2. Insertions: the first ones, in the ranker's own order, up to the cap stay (the share is of the
       ``n_items`` of the request that are still shown); the rest are dropped.
    """
    ranked = list(result.ranked_ids)
    kept = set(ranked)
    removed = [i for i in known_ids if i not in kept]
    allowed = caps.deletions_allowed(len(known_ids))
    restored = removed[allowed:] if allowed is not None else []
    for item_id in restored:
        _put_back(ranked, item_id, known_ids)
    known = set(known_ids)
    inserted = [i for i in ranked if i not in known]
    allowed = caps.insertions_allowed(n_items - (len(removed) - len(restored)))
    dropped = set(inserted[allowed:]) if allowed is not None else set()
    if not restored and not dropped:
        return result, False
    ranked = [i for i in ranked if i not in dropped]
    new_items = [n for n in result.new_items if n.id not in dropped]
    return RankResult(ranked_ids=ranked, new_items=new_items), True


def _put_back(ranked: list[str], item_id: str, known_ids: Sequence[str]) -> None:
    before = known_ids[: list(known_ids).index(item_id)]
    anchor = next((i for i in reversed(before) if i in ranked), None)
    ranked.insert(ranked.index(anchor) + 1 if anchor is not None else 0, item_id)


def is_public_post(item: NewItem) -> bool:
    """An inserted item must be a post anyone can open: http(s), a public host name."""
    if item.type != "post" or not item.id or not is_http_url(item.url):
        return False
    host = (urlsplit(item.url).hostname or "").lower()
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")) or "." not in host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return True
    return address.is_global
