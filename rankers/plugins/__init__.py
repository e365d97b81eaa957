"""Ranker plugins. Importing this package registers the built-ins."""

from rankers.plugins import (  # noqa: F401  (they register themselves)
    add_news,
    bridging,
    challenging_stereotypes,
    control,
    diverse_approval,
    external,
)
from rankers.plugins.base import (
    Candidate,
    NewItem,
    RankContext,
    Ranker,
    RankResult,
    SlateItem,
    all_rankers,
    get_ranker,
    register,
)

__all__ = [
    "Candidate",
    "NewItem",
    "RankContext",
    "RankResult",
    "Ranker",
    "SlateItem",
    "all_rankers",
    "get_ranker",
    "register",
]
