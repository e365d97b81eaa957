"""When a content source, or an inserting arm's pool and queues, count as stale: one rule each, read by the health
page."""

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


def arm_stale_reason(
    *,
    pool_built_at: dt.datetime | None,
    fresh_candidates: int,
    participants: int,
    fresh_queues: int | None,
    now: dt.datetime,
    refresh: dt.timedelta,
) -> str | None:
    """Why an inserting arm's pool or queues on one platform are stale, or None when they are fresh.

    1. No pool yet while participants are in the arm, or none rebuilt within two refresh intervals: the refresh
       is not running. An arm with neither pool nor participants is not in use and never stale.
    2. No candidate fresh enough for the arm: it inserts nothing (serving never falls back to older posts).
    3. Fewer than half of the arm's participants have a queue rebuilt within two refresh intervals.
    """
    if pool_built_at is None:
        return "no pool yet (manage.py refresh_queues)" if participants else None
    if now - pool_built_at > 2 * refresh:
        return f"pool not rebuilt for {hours_between(pool_built_at, now):.0f} h"
    if fresh_candidates == 0:
        return "no fresh candidates: the arm inserts nothing"
    if fresh_queues is not None and participants and fresh_queues < participants / 2:
        return f"only {fresh_queues} of {participants} participants have a fresh queue"
    return None
