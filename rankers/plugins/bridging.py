"""The Perspective arms of the paper (supplementary section 3.1): Uprank Bridging and Uprank Bridging, Downrank Toxic.

Both reorder the slate by a weighted sum of attribute scores (Tables S13 and S14) and never add or remove items.
Scores come precomputed in ``context.scores`` (see ``rankers.scoring.score_items``).

Rules, with the choices the paper leaves open written down:

1. An item is *scored* when every weighted attribute has a score; its value is ``sum(weight * score)``.
2. An item with any weighted attribute missing is *unscored* and takes a neutral value: that of its nearest scored
   neighbour before it in the original order, or, when none precedes it, of the first scored item after it. So an
   unscored item travels with its neighbour instead of collecting at the top or bottom of the slate (the rule of
   the PRC's own Perspective ranker). With no scored item at all, the original order is returned.
3. Items are sorted by value, highest first. The sort is stable: equal values keep their original order, and an
   unscored item lands right after (or, leading the slate, right before) the neighbour it copied.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import ClassVar

from rankers.plugins.base import RankContext, RankResult, SlateItem, register
from rankers.scoring import attributes as A

# Table S13: the mean of the six bridging attributes.
UPRANK_BRIDGING_WEIGHTS: Mapping[str, float] = dict.fromkeys(A.BRIDGING, 1 / 6)

# Table S14: bridging - 1/2 persuasion - 1/2 toxicity; scapegoating, moral outrage and alienation are averaged
# into one persuasion term because they were strongly correlated.
BRIDGING_DOWNRANK_TOXIC_WEIGHTS: Mapping[str, float] = {
    **UPRANK_BRIDGING_WEIGHTS,
    A.FEARMONGERING: -1 / 6,
    A.GENERALIZATION: -1 / 6,
    A.SCAPEGOATING: -1 / 18,
    A.MORAL_OUTRAGE: -1 / 18,
    A.ALIENATION: -1 / 18,
    A.TOXICITY: -1 / 8,
    A.IDENTITY_ATTACK: -1 / 8,
    A.INSULT: -1 / 8,
    A.THREAT: -1 / 8,
}


def weighted_score(scores: Mapping[str, float] | None, weights: Mapping[str, float]) -> float | None:
    """``sum(weight * score)``, or None when any weighted attribute is missing or not finite (unscored)."""
    if scores is None or any(attribute not in scores for attribute in weights):
        return None
    value = sum(weight * scores[attribute] for attribute, weight in weights.items())
    return value if math.isfinite(value) else None


def neutral_fill(values: Sequence[float | None]) -> list[float] | None:
    """Give each None the previous non-None value (the next one for leading Nones); None if all are None."""
    first = next((v for v in values if v is not None), None)
    if first is None:
        return None
    filled: list[float] = []
    last = first
    for value in values:
        last = value if value is not None else last
        filled.append(last)
    return filled


def rank_by_weights(
    ids: Sequence[str], scores: Mapping[str, Mapping[str, float]], weights: Mapping[str, float]
) -> list[str]:
    """The ids ordered by weighted score, highest first, following the module's rules. Pure."""
    values = neutral_fill([weighted_score(scores.get(item_id), weights) for item_id in ids])
    if values is None:
        return list(ids)
    order = sorted(range(len(ids)), key=lambda i: -values[i])  # stable: ties keep the original order
    return [ids[i] for i in order]


class _WeightedRanker:
    name: ClassVar[str]
    attributes: ClassVar[tuple[str, ...]]
    weights: ClassVar[Mapping[str, float]]

    def rank(self, items: Sequence[SlateItem], context: RankContext) -> RankResult:
        return RankResult(ranked_ids=rank_by_weights([item.id for item in items], context.scores, self.weights))


@register("uprank_bridging")
class UprankBridgingRanker(_WeightedRanker):
    """Uprank Bridging: the average of the six bridging attributes (Table S13)."""

    weights = UPRANK_BRIDGING_WEIGHTS
    attributes = tuple(UPRANK_BRIDGING_WEIGHTS)


@register("bridging_downrank_toxic")
class BridgingDownrankToxicRanker(_WeightedRanker):
    """Uprank Bridging, Downrank Toxic: bridging minus persuasion and toxicity (Table S14)."""

    weights = BRIDGING_DOWNRANK_TOXIC_WEIGHTS
    attributes = tuple(BRIDGING_DOWNRANK_TOXIC_WEIGHTS)
