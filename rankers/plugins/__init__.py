"""Ranker plugins. Importing this package registers the built-ins."""

from rankers.plugins import bridging, control, external  # noqa: F401  (they register themselves)
from rankers.plugins.base import (
    NewItem,
    RankContext,
    Ranker,
    RankResult,
    SlateItem,
    all_rankers,
    get_ranker,
    register,
)

__all__ = ["NewItem", "RankContext", "RankResult", "Ranker", "SlateItem", "all_rankers", "get_ranker", "register"]
