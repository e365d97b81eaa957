from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rankers.plugins.base import RankContext, RankResult, SlateItem, register


@register("control")
class ControlRanker:
    """Pass-through: the platform's own order."""

    name: ClassVar[str]
    attributes: ClassVar[tuple[str, ...]] = ()
    inline: ClassVar[bool] = True

    def rank(self, items: Sequence[SlateItem], context: RankContext) -> RankResult:
        return RankResult(ranked_ids=[item.id for item in items])
