"""Recompute logged slates' measures (NRC, RBO, slate length) under the current definitions.

Run by ``backfill_rollups --remeasure`` before it rolls the days up again. A slate logged since the slate
log records ``fixed_items`` and ``slate_length`` is recomputed exactly. An older one is reconstructed from
what it stored: its invalid items, items whose stored content has neither title nor text, and items past
Table S11's size for their type are fixed. Ads were not marked then, so an old slate's ads count as movable
(they never move, so they can only pull its NRC down a little).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from participants.paper import slate_length, slate_pass, slate_size
from rankers.models import ContentItem, Slate
from rankers.slate_metrics import slate_change

BATCH = 2000
FIELDS = ("nrc", "rbo", "slate_length", "slate_pass", "fixed_items")


def remeasure_slates(*, study_id: int, start: dt.datetime, end: dt.datetime) -> int:
    """Recompute the measures of one study's slates served in ``[start, end)``; returns how many changed."""
    slates = Slate.objects.served_between(start, end).filter(study_id=study_id).order_by("served_at", "id")
    changed = 0
    batch: list[Slate] = []
    for slate in slates.iterator(chunk_size=BATCH):
        batch.append(slate)
        if len(batch) == BATCH:
            changed += _remeasure_batch(batch)
            batch = []
    if batch:
        changed += _remeasure_batch(batch)
    return changed


def _remeasure_batch(slates: Sequence[Slate]) -> int:
    content = _content_of([s for s in slates if s.slate_length is None])
    updated = []
    for slate in slates:
        before = tuple(getattr(slate, name) for name in FIELDS)
        if slate.slate_length is None:
            _reconstruct(slate, content)
        change = slate_change(
            slate.original_ids,
            slate.returned_ids,
            [i for i in slate.original_ids if i not in slate.fixed_items],
            slate.slate_length,
        )
        slate.nrc, slate.rbo = change.nrc, change.rbo
        if tuple(getattr(slate, name) for name in FIELDS) != before:
            updated.append(slate)
    Slate.objects.bulk_update(updated, FIELDS)
    return len(updated)


ContentKey = tuple[str, str, str]


def _content_of(slates: Sequence[Slate]) -> dict[ContentKey, Mapping[str, Any]]:
    keys = {
        (slate.platform, item_id, digest)
        for slate in slates
        for item_id, digest in zip(slate.original_ids, slate.original_hashes, strict=False)
    }
    ids_by_platform: dict[str, set[str]] = {}
    for platform, item_id, _ in keys:
        ids_by_platform.setdefault(platform, set()).add(item_id)
    found: dict[ContentKey, Mapping[str, Any]] = {}
    for platform, item_ids in ids_by_platform.items():
        ordered = sorted(item_ids)
        for start in range(0, len(ordered), BATCH):
            rows = ContentItem.objects.filter(platform=platform, item_id__in=ordered[start : start + BATCH]).values(
                "platform", "item_id", "text_hash", "type", "title", "text"
            )
            for row in rows:
                key = (row["platform"], row["item_id"], row["text_hash"])
                if key in keys:
                    found[key] = row
    return found


def _reconstruct(slate: Slate, content: Mapping[ContentKey, Mapping[str, Any]]) -> None:
    """What ``plan_slate`` would have fixed, from what an older slate stored."""
    rows = [
        content.get((slate.platform, item_id, digest), {})
        for item_id, digest in zip(slate.original_ids, slate.original_hashes, strict=False)
    ]
    rows += [{}] * (len(slate.original_ids) - len(rows))
    types = [str(row.get("type") or "post") for row in rows]
    per_type = Counter(types)
    number = slate_pass(slate.platform, slate.content_type, per_type[slate.content_type])
    fixed: dict[str, str] = {}
    seen: Counter[str] = Counter()
    for item_id, row, item_type in zip(slate.original_ids, rows, types, strict=True):
        seen[item_type] += 1
        limit = slate_size(slate.platform, item_type, number)
        if item_id in slate.invalid_items:
            fixed[item_id] = "invalid"
        elif row and not (str(row.get("title") or "").strip() or str(row.get("text") or "").strip()):
            fixed[item_id] = "no_text"
        elif limit is not None and seen[item_type] > limit:
            fixed[item_id] = "past_slate_size"
    slate.fixed_items = fixed
    slate.slate_pass = number
    slate.slate_length = slate_length(slate.platform, slate.content_type, number, per_type[slate.content_type])
