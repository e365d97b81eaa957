"""What the three inserting arms (supplementary sections 3.2-3.4) share: their settings and the rules of what may
be inserted and where. Pure: plain candidates in, ids out.

Every threshold and percentage is a setting of the arm (its ``ranker_config``) with the paper's value as the
default; ``settings_problems`` is what the arm form and the launch checklist show when a value is wrong.

Rules every inserting arm follows:

1. Posts only, on main feeds only: a comment slate, or a feed that is not the platform's home feed (a
   subreddit's page, a profile, a search), is returned untouched (the paper: "did not intervene on comment
   threads or topic-specific subreddits").
2. A candidate is *available* when it is not older than the arm's limit, was not shown to this participant
   within the arm's shown window (prefetched slates do not count as shown), and is not already in the feed.
3. At most one post per source in a slate (Diverse Approval's rule; the other two arms ask for it through
   ``one_per_source``).
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from rankers.plugins.base import Candidate, RankContext, SlateItem

CHALLENGING_STEREOTYPES = "challenging_stereotypes"
DIVERSE_APPROVAL = "diverse_approval"
ADD_NEWS = "add_news"

# The paper's quality flags (section 3.3's prompt) that must stay *below* a threshold, for every platform.
UNIVERSAL_MAX_QUALITY: Mapping[str, float] = {
    "is_nsfw": 0.1,
    "is_niche": 0.4,
    "is_frivolous": 0.4,
    "is_outrage": 0.66,
    "is_conspiratorial": 0.7,
    "is_pessimistic": 0.66,
}
# Platform-specific filters: flags below a threshold, and flags that must be *above* one.
PLATFORM_MAX_QUALITY: Mapping[str, Mapping[str, float]] = {
    "reddit": {"is_sarcastic": 0.75},  # "Satirical content (threshold < 0.75)"
    "twitter": {"is_sarcastic": 0.75},
    "facebook": {"is_sarcastic": 0.75, "is_logistical": 0.2},
}
PLATFORM_MIN_QUALITY: Mapping[str, Mapping[str, float]] = {
    "twitter": {"has_enough_context": 0.75},
    "facebook": {"has_enough_context": 0.75},
}

DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    CHALLENGING_STEREOTYPES: {
        "replace_pct": 20,  # "the top 20 percent most political posts ... replace them"
        "max_age_h": 72,  # queued posts "more than three days old ... would otherwise have expired"
        "shown_window_h": 72,
        "orientation_min": 2.1,  # "retained if score > 2.1 and < 5.9"
        "orientation_max": 5.9,
        "max_quality": dict(UNIVERSAL_MAX_QUALITY),
        "platform_max_quality": {k: dict(v) for k, v in PLATFORM_MAX_QUALITY.items()},
        "platform_min_quality": {k: dict(v) for k, v in PLATFORM_MIN_QUALITY.items()},
        "min_queue_score": 0.5,  # a personalized post must challenge stereotypes or score this on mismatch
        "one_per_source": True,
        "main_feeds_only": True,
    },
    DIVERSE_APPROVAL: {
        "civic_threshold": 0.5,  # a feed post or candidate is civic from this classifier score
        "min_civic_pct": 15,  # "a minimum dosage of 15%"
        "min_party_approval": 3,  # "bridging if it scored at least 3 from both groups"
        "max_age_h": 24,  # "Reduced the maximum age of inserted posts from 5 days to 1 day" (7 Nov)
        "national_interest_only": True,  # "from 14 Nov onwards we also filtered out local politics"
        "one_per_source": True,  # "we inserted at most one item per source"
        "main_feeds_only": True,
    },
    ADD_NEWS: {
        "max_inserted_pct": 15,  # "no more than 15% of a user's daily posts are injected"
        "window_h": 48,  # "within 48 hours of the newest scraped post"
        "shown_window_h": 48,  # "a 48-hour shown-posts cache"
        "lean_weights": {"left": 25, "centre": 50, "right": 25},
        "one_per_source": False,
        "main_feeds_only": True,
    },
}

# The time windows the inventory loader must cover: shown ids are read this far back.
SHOWN_WINDOW_KEY = {
    CHALLENGING_STEREOTYPES: "shown_window_h",
    DIVERSE_APPROVAL: "max_age_h",
    ADD_NEWS: "shown_window_h",
}


def arm_settings(ranker_key: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The arm's settings: its ``ranker_config`` over the paper's defaults (nested tables merge per key)."""
    merged: dict[str, Any] = {}
    for key, default in DEFAULTS[ranker_key].items():
        value = config.get(key, default)
        if isinstance(default, dict) and isinstance(value, dict):
            value = {**default, **value}
        merged[key] = value
    return merged


def hours(value: float) -> dt.timedelta:
    return dt.timedelta(hours=float(value))


def shown_window(ranker_key: str, config: Mapping[str, Any]) -> dt.timedelta:
    """How far back "shown to this participant" reaches for this arm (Diverse Approval: "not previously seen";
    a post older than its age limit can never be inserted, so seen within that limit is seen ever)."""
    return hours(arm_settings(ranker_key, config)[SHOWN_WINDOW_KEY[ranker_key]])


# --- settings validation -----------------------------------------------------------------------------


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_number(key: str, value: Any, low: float, high: float) -> list[str]:
    if not _number(value) or not low <= value <= high:
        return [f"“{key}” must be a number from {low:g} to {high:g}, not {value!r}."]
    return []


def _check_table(key: str, value: Any, *, nested: bool) -> list[str]:
    example = '{"twitter": {"is_sarcastic": 0.75}}' if nested else '{"is_nsfw": 0.1}'
    if not isinstance(value, dict):
        return [f"“{key}” must be a JSON object such as {example}."]
    tables = value.values() if nested else [value]
    if nested and not all(isinstance(t, dict) for t in tables):
        return [f"“{key}” must be a JSON object such as {example}."]
    for table in tables:
        for flag, threshold in table.items():
            if not _number(threshold) or not 0 <= threshold <= 1:
                return [f"“{key}”: the threshold of {flag} must be a number from 0 to 1, not {threshold!r}."]
    return []


_RANGES: Mapping[str, tuple[float, float]] = {
    "replace_pct": (0, 100),
    "max_age_h": (0, 24 * 30),
    "shown_window_h": (0, 24 * 30),
    "window_h": (0, 24 * 30),
    "orientation_min": (1, 7),
    "orientation_max": (1, 7),
    "min_queue_score": (0, 1),
    "civic_threshold": (0, 1),
    "min_civic_pct": (0, 99),
    "min_party_approval": (1, 5),
    "max_inserted_pct": (0, 99),
}
_TABLES = {"max_quality": False, "platform_max_quality": True, "platform_min_quality": True}
_FLAGS = ("one_per_source", "main_feeds_only", "national_interest_only")
_OTHER_KEYS = ("budget_ms",)  # read by the ranking path for every arm


def settings_problems(ranker_key: str, config: Mapping[str, Any]) -> list[str]:
    """What is wrong with an inserting arm's ``ranker_config`` (empty when usable); other rankers: nothing."""
    if ranker_key not in DEFAULTS:
        return []
    defaults = DEFAULTS[ranker_key]
    unknown = sorted(set(config) - set(defaults) - set(_OTHER_KEYS))
    if unknown:
        return [f"Unknown setting(s) for {ranker_key}: {', '.join(unknown)}. Known: {', '.join(defaults)}."]
    problems: list[str] = []
    for key, value in config.items():
        if key in _RANGES:
            problems += _check_number(key, value, *_RANGES[key])
        elif key in _TABLES:
            problems += _check_table(key, value, nested=_TABLES[key])
        elif key in _FLAGS and not isinstance(value, bool):
            problems.append(f"“{key}” must be true or false (JSON booleans, no quotes).")
        elif key == "lean_weights":
            problems += _lean_weight_problems(value)
    merged = arm_settings(ranker_key, config)
    if not problems and "orientation_min" in merged and merged["orientation_min"] >= merged["orientation_max"]:
        problems.append("“orientation_min” must be below “orientation_max”.")
    return problems


def _lean_weight_problems(value: Any) -> list[str]:
    example = '{"left": 25, "centre": 50, "right": 25}'
    if not isinstance(value, dict) or set(value) - {"left", "centre", "right"}:
        return [f"“lean_weights” must be a JSON object with the keys left, centre and right, e.g. {example}."]
    if not all(_number(w) and w >= 0 for w in value.values()) or not any(w > 0 for w in value.values()):
        return [f"“lean_weights” must be numbers of at least 0, not all 0, e.g. {example}."]
    return []


# --- where an inserting arm acts -------------------------------------------------------------------------

# The platform's main feed: Reddit's home page (and its Best/Hot/New/Top/Rising tabs), X's home timeline,
# Facebook's News Feed. Not a subreddit, a profile, a search, a thread or a group.
_MAIN_FEED_PATHS: Mapping[str, re.Pattern[str]] = {
    "reddit": re.compile(r"^/(?:(?:best|hot|new|top|rising)/?)?$"),
    "twitter": re.compile(r"^/(?:home/?)?$"),
    "facebook": re.compile(r"^/(?:\?.*)?$|^/home\.php$"),
}


def is_main_feed(platform: str, page_url: str) -> bool:
    """Whether ``page_url`` is the platform's main feed; an unknown page (no URL given) counts as one."""
    if not page_url:
        return True
    pattern = _MAIN_FEED_PATHS.get(platform)
    return pattern is None or bool(pattern.match(urlsplit(page_url).path or "/"))


def acts_on(items: Sequence[SlateItem], context: RankContext, settings: Mapping[str, Any]) -> bool:
    """Rule 1: posts only, and main feeds only unless the arm says otherwise."""
    if context.content_type != "post" or not any(item.type == "post" for item in items):
        return False
    return not settings["main_feeds_only"] or is_main_feed(context.platform, context.page_url)


# --- what may be inserted ---------------------------------------------------------------------------


def is_fresh(candidate: Candidate, *, newest_allowed_age: dt.timedelta, reference: dt.datetime) -> bool:
    """Posted no earlier than ``reference - newest_allowed_age``; a post without a time is never fresh."""
    return candidate.posted_at is not None and candidate.posted_at >= reference - newest_allowed_age


def available(
    candidates: Iterable[Candidate],
    items: Sequence[SlateItem],
    context: RankContext,
    *,
    max_age: dt.timedelta,
    reference: dt.datetime | None = None,
) -> list[Candidate]:
    """Rule 2, in the candidates' order: fresh (against ``reference``, by default now), not shown to this
    participant, not in the feed already (by id or by the platform's post id), each post once."""
    in_feed = {item.id for item in items} | {item.post_id for item in items if item.post_id}
    reference = reference or context.now
    seen: set[str] = set()
    result = []
    for candidate in candidates:
        if candidate.id in seen or candidate.id in context.shown or candidate.id in in_feed:
            continue
        if (candidate.post_id and candidate.post_id in in_feed) or not is_fresh(
            candidate, newest_allowed_age=max_age, reference=reference
        ):
            continue
        seen.add(candidate.id)
        result.append(candidate)
    return result


def one_per_source(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Rule 3: the first candidate of each source, in order."""
    sources: set[int] = set()
    result = []
    for candidate in candidates:
        if candidate.source_id not in sources:
            sources.add(candidate.source_id)
            result.append(candidate)
    return result


# --- where inserted posts go ----------------------------------------------------------------------------


def replace_ids(ids: Sequence[str], replaced: Sequence[str], inserted: Sequence[str]) -> list[str]:
    """``ids`` with the k-th replaced id swapped for the k-th inserted one, in place; replaced ids without an
    inserted post to take their place stay where they were (fewer candidates: fewer replacements)."""
    swap = dict(zip(replaced, inserted, strict=False))
    return [swap.get(item_id, item_id) for item_id in ids]


def insert_at_random(ids: Sequence[str], inserted: Sequence[str], rng: random.Random) -> list[str]:
    """``ids`` with ``inserted`` placed at random positions (their own order kept)."""
    total = len(ids) + len(inserted)
    slots = set(rng.sample(range(total), len(inserted)))
    new, old = iter(inserted), iter(ids)
    return [next(new) if position in slots else next(old) for position in range(total)]


def request_rng(ranker_key: str, context: RankContext) -> random.Random:
    """The randomness of one request: the same request ranks the same way (reproducible in tests and audits)."""
    return random.Random(f"{ranker_key}|{context.user_id}|{context.platform}|{context.now.isoformat()}")


def civic_scores(items: Sequence[SlateItem], context: RankContext, attribute: str) -> dict[str, float]:
    """The classifier's score of each feed post that has one (unscored posts are never replaced)."""
    scores: dict[str, float] = {}
    for item in items:
        value = context.scores.get(item.id, {}).get(attribute)
        if item.type == "post" and value is not None:
            scores[item.id] = value
    return scores
