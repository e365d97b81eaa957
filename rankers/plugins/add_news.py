"""Add News (supplementary section 3.4): insert personalized posts of balanced news outlets.

1. Only post slates of main feeds (``inserting.acts_on``).
2. Candidates come in the participant's queue order (nearest neighbours of what they were served, shuffled:
   ``rankers.content.queues``; without a queue yet, the global pool). Available are those posted within
   ``window_h`` (48 h) *of the newest scraped post* ("Only scraped posts which are within 48 hours of the newest
   scraped post are eligible"), not shown to this participant within ``shown_window_h`` (48 h: "a 48-hour
   shown-posts cache"), not in the feed, and from a source with a lean.
3. How many: as many as keep inserted posts at or under ``max_inserted_pct`` (15 %) of the posts shown. Holding
   every slate to it keeps every day under it ("no more than 15% of a user's daily posts are injected").
4. Which: for each insertion, a lean is drawn with ``lean_weights`` (25 % left, 50 % centre, 25 % right: "a
   weighted sampling strategy") among the leans that still have candidates, and that lean's next candidate in
   queue order is taken.
5. Where: at random positions. Nothing is removed ("Posts replaced/deleted: None").
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import ClassVar

from participants.paper import CapRule
from rankers.plugins import inserting as ins
from rankers.plugins.base import Candidate, RankContext, RankResult, SlateItem, register


def sample_by_lean(
    candidates: Sequence[Candidate], weights: Mapping[str, float], k: int, rng: random.Random
) -> list[Candidate]:
    """Rule 4: up to ``k`` candidates, each from a lean drawn by ``weights`` among leans with candidates left."""
    queues = {lean: [c for c in candidates if c.lean == lean] for lean, weight in weights.items() if weight > 0}
    chosen: list[Candidate] = []
    while len(chosen) < k:
        leans = [lean for lean, queue in queues.items() if queue]
        if not leans:
            break
        lean = rng.choices(leans, weights=[weights[lean] for lean in leans])[0]
        chosen.append(queues[lean].pop(0))
    return chosen


@register(ins.ADD_NEWS)
class AddNewsRanker:
    """Adds personalized news posts up to 15 % of the posts shown, balanced 25/50/25 by lean (section 3.4)."""

    name: ClassVar[str]
    attributes: ClassVar[tuple[str, ...]] = ()
    needs_candidates: ClassVar[bool] = True

    def rank(self, items: Sequence[SlateItem], context: RankContext) -> RankResult:
        ids = [item.id for item in items]
        settings = ins.arm_settings(ins.ADD_NEWS, context.config)
        if not ins.acts_on(items, context, settings) or context.inventory_newest_at is None:
            return RankResult(ranked_ids=ids)
        pool = ins.available(
            context.candidates,
            items,
            context,
            max_age=ins.hours(settings["window_h"]),
            reference=context.inventory_newest_at,
        )
        if settings["one_per_source"]:
            pool = ins.one_per_source(pool)
        n_posts = sum(1 for item in items if item.type == "post")
        k = CapRule(settings["max_inserted_pct"], None).max_inserted(n_posts) or 0
        rng = ins.request_rng(ins.ADD_NEWS, context)
        chosen = sample_by_lean(pool, settings["lean_weights"], k, rng)
        ranked = ins.insert_at_random(ids, [c.id for c in chosen], rng)
        return RankResult(ranked_ids=ranked, new_items=[c.new_item() for c in chosen])
