"""When a content source counts as stale: one rule, read by the health page (and later by the queues)."""

from __future__ import annotations

import datetime as dt


def hours_between(earlier: dt.datetime, later: dt.datetime) -> float:
    """Whole elapsed hours, never negative (a post dated in the future is as fresh as now)."""
    return max(0.0, (later - earlier).total_seconds() / 3600)


def stale_reason(
    *,
    active: bool,
    newest_post_at: dt.datetime | None,
    last_success_at: dt.datetime | None,
    now: dt.datetime,
    limit: dt.timedelta,
) -> str | None:
    """Why an active source is stale, or None when it is fresh (or inactive, so never drawn on).

    1. No successful run yet, or none within ``limit``: the connector is not bringing posts in.
    2. No post yet, or the newest post older than ``limit``: the source itself has gone quiet.
    The first cause is named when both hold, since it is the one a researcher can fix.
    """
    if not active:
        return None
    limit_h = limit.total_seconds() / 3600
    if last_success_at is None:
        return "no successful run yet"
    if now - last_success_at > limit:
        return f"no successful run for {hours_between(last_success_at, now):.0f} h (limit {limit_h:g} h)"
    if newest_post_at is None:
        return "no posts yet"
    if now - newest_post_at > limit:
        return f"newest post is {hours_between(newest_post_at, now):.0f} h old (limit {limit_h:g} h)"
    return None
