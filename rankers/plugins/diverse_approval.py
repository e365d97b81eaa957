"""Diverse Approval (supplementary section 3.2): replace civic posts with civic posts that both parties would
approve of, and top civic content up to a minimum dosage.

1. Only post slates of main feeds (``inserting.acts_on``).
2. The slate's civic posts are those whose civic classifier score (``CIVIC``) is at least ``civic_threshold``.
3. Candidates (the global pool: "Added posts were selected from a global pool shared between all users") must
   be available (posted within ``max_age_h``, 24 h; not shown to this participant within that time, which for
   a post that young is "not previously seen"; not in the feed), civic, bridging (both party approval scores at
   least ``min_party_approval``, 3) and of national interest; at most one per source. "Posts with higher
   bridging scores, defined as the lower of the two party-specific scores, were preferentially sampled": they
   are taken highest minimum first, ties in random order.
4. Every civic post is replaced, in place, by the next candidate ("Civic posts were replaced at their original
   positions"); without enough candidates the remaining civic posts stay.
5. If civic posts are then fewer than ``min_civic_pct`` (15 %) of the slate, more candidates are inserted at
   random positions until they are not ("additional civic and bridging posts were inserted at random
   positions to attain a minimum dosage of 15%").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from rankers.plugins import inserting as ins
from rankers.plugins.base import Candidate, RankContext, RankResult, SlateItem, register
from rankers.scoring import attributes as A


def bridging_score(candidate: Candidate) -> float | None:
    """The lower of the two party approval scores (1-5), None when either is missing."""
    if candidate.approval_republican is None or candidate.approval_democrat is None:
        return None
    return min(candidate.approval_republican, candidate.approval_democrat)


def is_eligible(candidate: Candidate, settings: Mapping[str, Any]) -> bool:
    """Rule 3's annotation part: civic, bridging, and of national interest when the arm asks for it."""
    score = bridging_score(candidate)
    if candidate.civic is None or candidate.civic < settings["civic_threshold"]:
        return False
    if score is None or score < settings["min_party_approval"]:
        return False
    return not settings["national_interest_only"] or candidate.national_interest is True


def insertions_for_dosage(n_posts: int, n_civic: int, min_pct: float) -> int:
    """Rule 5: the fewest k >= 0 with (n_civic + k) / (n_posts + k) >= min_pct %."""
    share = min_pct / 100
    if share <= 0 or n_posts == 0 or n_civic >= share * n_posts - 1e-9:
        return 0
    return max(0, math.ceil((share * n_posts - n_civic) / (1 - share) - 1e-9))


@register(ins.DIVERSE_APPROVAL)
class DiverseApprovalRanker:
    """Replaces civic posts with civic, bridging posts and keeps civic posts at 15 % or more (section 3.2)."""

    name: ClassVar[str]
    attributes: ClassVar[tuple[str, ...]] = (A.CIVIC,)
    needs_candidates: ClassVar[bool] = True

    def rank(self, items: Sequence[SlateItem], context: RankContext) -> RankResult:
        ids = [item.id for item in items]
        settings = ins.arm_settings(ins.DIVERSE_APPROVAL, context.config)
        if not ins.acts_on(items, context, settings):
            return RankResult(ranked_ids=ids)
        rng = ins.request_rng(ins.DIVERSE_APPROVAL, context)
        scores = ins.civic_scores(items, context, A.CIVIC)
        civic = [item_id for item_id in ids if scores.get(item_id, -1.0) >= settings["civic_threshold"]]
        pool = ins.available(context.candidates, items, context, max_age=ins.hours(settings["max_age_h"]))
        pool = [c for c in pool if is_eligible(c, settings)]
        ties = {c.id: rng.random() for c in pool}
        pool.sort(key=lambda c: (-(bridging_score(c) or 0.0), ties[c.id]))
        if settings["one_per_source"]:
            pool = ins.one_per_source(pool)
        replacing = pool[: len(civic)]
        ranked = ins.replace_ids(ids, civic, [c.id for c in replacing])
        n_posts = sum(1 for item in items if item.type == "post")
        extra_needed = insertions_for_dosage(n_posts, len(civic), settings["min_civic_pct"])
        extra = pool[len(replacing) : len(replacing) + extra_needed]
        ranked = ins.insert_at_random(ranked, [c.id for c in extra], rng)
        return RankResult(ranked_ids=ranked, new_items=[c.new_item() for c in (*replacing, *extra)])
