"""Checks on a ranker's output before any participant sees it. Pure.

Each check returns a fallback reason (a short code recorded in the slate log
and in metrics) or None when the output may be shown.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from rankers.plugins.base import NewItem, RankResult
from rankers.validation import is_http_url

# Codes for every way ranking can fall back to the original order.
TIMEOUT = "timeout"
EXCEPTION = "exception"
BAD_OUTPUT = "bad_output"
DUPLICATE_IDS = "duplicate_ids"
UNKNOWN_IDS = "unknown_ids"
CAP_EXCEEDED = "cap_exceeded"
BAD_INSERTED_ITEM = "bad_inserted_item"
EMPTY_RESULT = "empty_result"
UNKNOWN_RANKER = "unknown_ranker"
UNSCORED = "unscored"  # the arm's ranker reads attributes and the scorer scored none of the slate's items


@dataclass(frozen=True)
class Caps:
    max_inserted: int
    max_deleted: int


def check_result(result: object, known_ids: Sequence[str], caps: Caps) -> str | None:
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
    deleted = len(known - set(ranked))
    if known and not ranked:
        return EMPTY_RESULT
    if len(inserted) > caps.max_inserted or deleted > caps.max_deleted:
        return CAP_EXCEEDED
    return None


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
