"""Challenging Stereotypes (supplementary section 3.3): replace the feed's most political posts with queued posts
that pass the paper's quality filters, alternating liberal- and conservative-leaning ones.

1. Only post slates of main feeds (``inserting.acts_on``).
2. The ``replace_pct`` (20 %) most political posts of the slate, by the fast civic/political classifier's score
   (``CIVIC``, from the scorer workers; ties: the earlier post), are to be replaced. Unscored posts are never
   replaced. "we identify the top 20 percent most political posts ... then replace them".
3. Candidates come in queue order (the participant's personalized queue, else the global pool: see
   ``rankers.content.queues``); those available (fresh within ``max_age_h``, not shown, not in the feed) and
   passing ``passes_quality`` are kept, one per source.
4. They alternate liberal and conservative (``side``), starting with a side drawn per request; when one side
   runs out, moderate posts and then the other side fill the rest. Fewer candidates: fewer replacements.
5. The chosen posts take the replaced posts' places in feed order, so the feed itself alternates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from rankers.plugins import inserting as ins
from rankers.plugins.base import Candidate, RankContext, RankResult, SlateItem, register
from rankers.scoring import attributes as A

LIBERAL = "liberal"
CONSERVATIVE = "conservative"
MODERATE_ORIENTATION = 4.0  # the paper's scale: 1 extremely conservative, 4 moderate, 7 extremely liberal


def passes_quality(candidate: Candidate, platform: str, settings: Mapping[str, Any]) -> bool:
    """The paper's universal and per-platform quality filters and the orientation band.

    A flag the annotation lacks fails the filter (an unannotated post is never inserted). An orientation of
    null ("not applicable": not political) passes the band; a rated one must lie strictly inside it.
    """
    below = {**settings["max_quality"], **settings["platform_max_quality"].get(platform, {})}
    above = settings["platform_min_quality"].get(platform, {})
    quality = candidate.quality
    if any(flag not in quality or not quality[flag] < threshold for flag, threshold in below.items()):
        return False
    if any(flag not in quality or not quality[flag] > threshold for flag, threshold in above.items()):
        return False
    orientation = candidate.political_orientation
    return orientation is None or settings["orientation_min"] < orientation < settings["orientation_max"]


def side(candidate: Candidate) -> str | None:
    """Liberal- or conservative-leaning: the post's own orientation, else its source's lean; None if neither."""
    orientation = candidate.political_orientation
    if orientation is not None and orientation != MODERATE_ORIENTATION:
        return LIBERAL if orientation > MODERATE_ORIENTATION else CONSERVATIVE
    return {"left": LIBERAL, "right": CONSERVATIVE}.get(candidate.lean)


def alternate(candidates: Sequence[Candidate], *, first: str) -> list[Candidate]:
    """Rule 4: liberal and conservative in turn from ``first`` (queue order within each side); when one side
    runs out, the other's next post if it still alternates, then moderates, then the rest."""
    queues: dict[str | None, list[Candidate]] = {LIBERAL: [], CONSERVATIVE: [], None: []}
    for candidate in candidates:
        queues[side(candidate)].append(candidate)
    leading = queues[first]
    trailing = queues[CONSERVATIVE if first == LIBERAL else LIBERAL]
    pairs = min(len(leading), len(trailing))
    result = [c for pair in zip(leading[:pairs], trailing[:pairs], strict=True) for c in pair]
    rest = leading[pairs:] or trailing[pairs:]
    if leading[pairs:]:  # the leading side's next post still alternates
        result.append(rest.pop(0))
    return result + queues[None] + rest


def most_political(scores: Mapping[str, float], order: Sequence[str], share_pct: float) -> list[str]:
    """Rule 2: the ``share_pct`` most political of the slate's ``order`` posts, in feed order."""
    k = math.floor(len(order) * share_pct / 100 + 1e-9)
    position = {item_id: index for index, item_id in enumerate(order)}
    ranked = sorted((i for i in order if i in scores), key=lambda i: (-scores[i], position[i]))[:k]
    return sorted(ranked, key=position.__getitem__)


@register(ins.CHALLENGING_STEREOTYPES)
class ChallengingStereotypesRanker:
    """Replaces the 20 % most political posts with queued posts that challenge stereotypes (section 3.3)."""

    name: ClassVar[str]
    attributes: ClassVar[tuple[str, ...]] = (A.CIVIC,)
    needs_candidates: ClassVar[bool] = True

    def rank(self, items: Sequence[SlateItem], context: RankContext) -> RankResult:
        ids = [item.id for item in items]
        settings = ins.arm_settings(ins.CHALLENGING_STEREOTYPES, context.config)
        if not ins.acts_on(items, context, settings):
            return RankResult(ranked_ids=ids)
        posts = [item.id for item in items if item.type == "post"]
        scores = ins.civic_scores(items, context, A.CIVIC)
        targets = most_political(scores, posts, settings["replace_pct"])
        pool = ins.available(context.candidates, items, context, max_age=ins.hours(settings["max_age_h"]))
        pool = [c for c in pool if passes_quality(c, context.platform, settings)]
        if settings["one_per_source"]:
            pool = ins.one_per_source(pool)
        first = ins.request_rng(ins.CHALLENGING_STEREOTYPES, context).choice([LIBERAL, CONSERVATIVE])
        chosen = alternate(pool, first=first)[: len(targets)]
        ranked = ins.replace_ids(ids, targets, [c.id for c in chosen])
        return RankResult(ranked_ids=ranked, new_items=[c.new_item() for c in chosen])
