"""The paper's study design, written once: platforms, the arms, Table S11's slate sizes and each arm's caps.

Pure data and pure functions (no ORM), imported by the models, the extension API, the ranking path, the
seeders and the dashboards. Where a rule here reads a sentence of the paper, the sentence is quoted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

PLATFORMS = ("facebook", "reddit", "twitter")
PLATFORM_LABELS: Mapping[str, str] = {"facebook": "Facebook", "reddit": "Reddit", "twitter": "X/Twitter"}
CONTENT_TYPES = ("post", "comment")


class PaperArm(NamedTuple):
    slug: str  # also the ranker key
    name: str
    allocation_weight: int
    is_control: bool


# Control takes twice the share of each treatment: 2:1:1:1:1:1.
PAPER_ARMS = [
    PaperArm("control", "Control", 2, True),
    PaperArm("uprank_bridging", "Uprank Bridging", 1, False),
    PaperArm("bridging_downrank_toxic", "Uprank Bridging, Downrank Toxic", 1, False),
    PaperArm("challenging_stereotypes", "Challenging Stereotypes", 1, False),
    PaperArm("diverse_approval", "Diverse Approval", 1, False),
    PaperArm("add_news", "Add News", 1, False),
]


# --- Table S11: items re-ranked per request ------------------------------------------------------

# (platform, content type) -> the size of each pass; None = all available. "Facebook posts, where we
# fetched first 10 and then another 35 in the background": two passes, each its own slate, never
# reordered into each other.
SLATE_PASSES: Mapping[tuple[str, str], tuple[int | None, ...]] = {
    ("reddit", "post"): (50,),
    ("reddit", "comment"): (None,),
    ("twitter", "post"): (50,),
    ("twitter", "comment"): (50,),
    ("facebook", "post"): (10, 35),
    ("facebook", "comment"): (50,),
}
DEFAULT_SLATE_SIZE = 50  # "re-ranking the first 50 content items per page load" (the preregistration)


def slate_passes(platform: str, content_type: str) -> tuple[int | None, ...]:
    return SLATE_PASSES.get((platform, content_type), (DEFAULT_SLATE_SIZE,))


def slate_pass(platform: str, content_type: str, n_items: int, requested: int | None = None) -> int:
    """Which pass (1-based) a request is: the one it names, else the first pass its items fit in.

    A named pass beyond the platform's passes is the last one. Without a name, a Facebook request of up
    to 10 posts is the first pass and a longer one the second.
    """
    passes = slate_passes(platform, content_type)
    if requested is not None and requested >= 1:
        return min(requested, len(passes))
    for number, size in enumerate(passes, start=1):
        if size is None or n_items <= size:
            return number
    return len(passes)


def slate_size(platform: str, content_type: str, pass_number: int = 1) -> int | None:
    """Items of this type ranked in this pass (Table S11); None = all available."""
    passes = slate_passes(platform, content_type)
    return passes[min(max(pass_number, 1), len(passes)) - 1]


def slate_length(platform: str, content_type: str, pass_number: int, n_available: int) -> int:
    """The slate length of Table S11 for a request with ``n_available`` items of this type.

    "50 (or all available)": a request with fewer items than the table's size is a shorter slate.
    """
    size = slate_size(platform, content_type, pass_number)
    return n_available if size is None else min(size, n_available)


def extension_slate_sizes() -> dict[str, dict[str, Any]]:
    """Table S11 as the extension receives it at register: a number, null (all) or a list of passes."""
    config: dict[str, dict[str, Any]] = {}
    for (platform, content_type), passes in SLATE_PASSES.items():
        value: Any = list(passes) if len(passes) > 1 else passes[0]
        config.setdefault(platform, {})[content_type + "s"] = value
    return config


# --- Caps on what an arm inserts and removes -----------------------------------------------------


@dataclass(frozen=True)
class CapRule:
    """Most items an arm may insert and remove in one slate, as percentages; None = no limit.

    ``inserted_pct`` is a share of the posts shown (the returned slate), ``deleted_pct`` a share of the
    items the ranker could move.
    """

    inserted_pct: float | None
    deleted_pct: float | None

    def max_deleted(self, n_rankable: int) -> int | None:
        if self.deleted_pct is None:
            return None
        return math.floor(n_rankable * self.deleted_pct / 100 + 1e-9)

    def max_inserted(self, n_kept: int) -> int | None:
        """Inserted items k with k / (n_kept + k) <= inserted_pct, n_kept being the original items shown."""
        if self.inserted_pct is None or self.inserted_pct >= 100:
            return None
        share = self.inserted_pct / 100
        return math.floor(n_kept * share / (1 - share) + 1e-9)


# Supplementary section 3, arm by arm.
PAPER_CAPS: Mapping[str, CapRule] = {
    "control": CapRule(0, 0),
    # Perspective arms: "Posts Added: These rankers did not add any new posts." "Posts replaced/deleted? None."
    "uprank_bridging": CapRule(0, 0),
    "bridging_downrank_toxic": CapRule(0, 0),
    # "we identify the top 20 percent most political posts ... then replace them with these pre-selected posts"
    "challenging_stereotypes": CapRule(20, 20),
    # "all civic posts ... were replaced", plus insertions up to a 15 % civic minimum: no upper bound given.
    "diverse_approval": CapRule(None, None),
    # "no more than 15% of a user's daily posts are injected": 15 % of every slate keeps every day under it.
    "add_news": CapRule(15, 0),
}
# Rankers the paper does not describe (external services, new plugins): as much as the paper's largest
# fixed rule (Challenging Stereotypes), until researchers set the arm's own caps.
OTHER_RANKERS_CAPS = CapRule(20, 20)


def default_caps(ranker_key: str) -> CapRule:
    return PAPER_CAPS.get(ranker_key, OTHER_RANKERS_CAPS)


def cap_rule(ranker_key: str, inserted_pct: float | None = None, deleted_pct: float | None = None) -> CapRule:
    """An arm's caps: the percentages researchers set on it, else its ranker's rule from the paper."""
    default = default_caps(ranker_key)
    return CapRule(
        inserted_pct=default.inserted_pct if inserted_pct is None else inserted_pct,
        deleted_pct=default.deleted_pct if deleted_pct is None else deleted_pct,
    )
