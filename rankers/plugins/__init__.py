"""Ranker plugins. Importing this package registers the built-ins."""

from rankers.plugins import control  # noqa: F401  (registers itself)
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
