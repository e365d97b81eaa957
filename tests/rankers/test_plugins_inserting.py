"""The three inserting arms (paper, supplementary sections 3.2-3.4) on hand-made slates: dosage, caps,
alternation, freshness, the shown cache, one post per source, and where they do not act."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from participants.paper import cap_rule
from rankers import checks
from rankers.checks import Caps
from rankers.launch_checks import arm_settings_problems
from rankers.plugins import get_ranker
from rankers.plugins import inserting as ins
from rankers.plugins.add_news import sample_by_lean
from rankers.plugins.base import Candidate, RankContext, RankResult, SlateItem
from rankers.plugins.challenging_stereotypes import alternate, most_political, passes_quality, side
from rankers.plugins.diverse_approval import insertions_for_dosage, is_eligible
from rankers.scoring import attributes as A

NOW = dt.datetime(2024, 11, 20, 12, tzinfo=dt.UTC)
GOOD_QUALITY = {
    "is_nsfw": 0.0, "is_niche": 0.0, "is_frivolous": 0.0, "is_outrage": 0.0, "is_conspiratorial": 0.0,
    "is_pessimistic": 0.0, "is_sarcastic": 0.0, "is_logistical": 0.0, "has_enough_context": 1.0,
}  # fmt: skip


def slate(n: int, civic: Mapping[int, float] | None = None) -> tuple[list[SlateItem], dict[str, dict[str, float]]]:
    items = [SlateItem(f"p{i}", f"post number {i}") for i in range(n)]
    scores = {f"p{i}": {A.CIVIC: (civic or {}).get(i, 0.0)} for i in range(n)}
    return items, scores


def cand(number: int, **fields: Any) -> Candidate:
    values: dict[str, Any] = {
        "id": f"prc-{number}",
        "url": f"https://news.example.org/story/{number}",
        "source_id": number,
        "lean": "centre",
        "posted_at": NOW - dt.timedelta(hours=1),
        "annotation_version": "v1",
        "civic": 0.9,
        "approval_republican": 4.0,
        "approval_democrat": 4.0,
        "national_interest": True,
        "political_orientation": 4.0,
        "quality": GOOD_QUALITY,
    }
    values.update(fields)
    return Candidate(**values)


def ctx(
    candidates: Sequence[Candidate] = (),
    scores: Mapping[str, Mapping[str, float]] | None = None,
    **fields: Any,
) -> RankContext:
    values: dict[str, Any] = {
        "platform": "reddit",
        "content_type": "post",
        "user_id": "u1",
        "now": NOW,
        "scores": scores or {},
        "candidates": tuple(candidates),
        "inventory_newest_at": NOW - dt.timedelta(minutes=30),
        "page_url": "https://www.reddit.com/",
    }
    values.update(fields)
    return RankContext(**values)


def rank(name: str, items: Sequence[SlateItem], context: RankContext) -> RankResult:
    result = get_ranker(name).rank(items, context)
    # Every answer passes the ranking path's own output checks.
    assert checks.check_result(result, [item.id for item in items]) is None
    return result


def originals(result: RankResult) -> list[str]:
    return [i for i in result.ranked_ids if not i.startswith("prc-")]


def inserted(result: RankResult) -> list[str]:
    return [n.id for n in result.new_items]


# --- Challenging Stereotypes -------------------------------------------------------------------------------


def test_challenging_stereotypes_replaces_the_fifth_most_political_posts_in_place():
    items, scores = slate(10, civic={2: 0.9, 7: 0.8, 4: 0.1})
    candidates = [cand(1, political_orientation=5.0), cand(2, political_orientation=3.0), cand(3)]
    result = rank("challenging_stereotypes", items, ctx(candidates, scores))
    assert len(result.new_items) == 2  # 20 % of 10 posts
    assert [i for i in result.ranked_ids if i.startswith("prc-")] == [result.ranked_ids[2], result.ranked_ids[7]]
    assert "p2" not in result.ranked_ids
    assert "p7" not in result.ranked_ids
    assert originals(result) == [f"p{i}" for i in range(10) if i not in (2, 7)]


def test_challenging_stereotypes_alternates_liberal_and_conservative_in_feed_order():
    items, scores = slate(20, civic={i: 0.5 + i / 100 for i in range(20)})
    liberal = [cand(n, political_orientation=5.5) for n in range(1, 4)]
    conservative = [cand(n, political_orientation=2.5) for n in range(11, 14)]
    result = rank("challenging_stereotypes", items, ctx([*liberal, *conservative], scores))
    by_id = {c.id: c for c in [*liberal, *conservative]}
    sides = [side(by_id[i]) for i in result.ranked_ids if i in by_id]
    assert len(sides) == 4
    assert all(a != b for a, b in itertools.pairwise(sides))


def test_alternation_fills_with_moderates_then_the_longer_side():
    lib = [cand(n, political_orientation=6.0) for n in (1, 2, 3)]
    con = [cand(4, political_orientation=1.5)]
    mod = [cand(5, political_orientation=4.0, lean="")]
    order = [c.id for c in alternate([*lib, *con, *mod], first="conservative")]
    assert order == ["prc-4", "prc-1", "prc-5", "prc-2", "prc-3"]
    assert [c.id for c in alternate([*lib, *con], first="liberal")] == ["prc-1", "prc-4", "prc-2", "prc-3"]


def test_side_falls_back_to_the_sources_lean_for_moderate_or_unrated_posts():
    assert side(cand(1, political_orientation=None, lean="left")) == "liberal"
    assert side(cand(1, political_orientation=4.0, lean="right")) == "conservative"
    assert side(cand(1, political_orientation=6.5, lean="right")) == "liberal"
    assert side(cand(1, political_orientation=None, lean="centre")) is None


@pytest.mark.parametrize(
    ("platform", "flag", "value", "passes"),
    [
        ("reddit", "is_nsfw", 0.09, True),
        ("reddit", "is_nsfw", 0.1, False),  # "threshold < 0.1"
        ("reddit", "is_outrage", 0.65, True),
        ("reddit", "is_conspiratorial", 0.7, False),
        ("reddit", "is_sarcastic", 0.8, False),  # Reddit: satire filtered
        ("reddit", "has_enough_context", 0.1, True),  # context is asked only of X and Facebook
        ("twitter", "has_enough_context", 0.75, False),  # "threshold > 0.75"
        ("facebook", "is_logistical", 0.25, False),
        ("twitter", "is_logistical", 0.25, True),
    ],
)
def test_quality_filters_follow_the_papers_thresholds(platform: str, flag: str, value: float, passes: bool):
    settings = ins.arm_settings("challenging_stereotypes", {})
    assert passes_quality(cand(1, quality={**GOOD_QUALITY, flag: value}), platform, settings) is passes


def test_quality_filters_drop_strongly_partisan_and_unannotated_posts():
    settings = ins.arm_settings("challenging_stereotypes", {})
    assert not passes_quality(cand(1, political_orientation=6.0), "reddit", settings)
    assert not passes_quality(cand(1, political_orientation=2.1), "reddit", settings)
    assert passes_quality(cand(1, political_orientation=None), "reddit", settings)
    assert not passes_quality(cand(1, quality={}), "reddit", settings)
    looser = ins.arm_settings("challenging_stereotypes", {"max_quality": {"is_nsfw": 0.5}})
    assert passes_quality(cand(1, quality={**GOOD_QUALITY, "is_nsfw": 0.3}), "reddit", looser)


def test_most_political_takes_the_top_share_by_score_and_skips_unscored_posts():
    order = [f"p{i}" for i in range(10)]
    assert most_political({"p3": 0.9, "p1": 0.9, "p8": 0.95}, order, 20) == ["p1", "p8"]
    assert most_political({"p3": 0.2}, order, 20) == ["p3"]
    assert most_political({"p3": 0.9}, order[:4], 20) == []


def test_challenging_stereotypes_respects_its_caps_and_inserts_fewer_without_candidates():
    items, scores = slate(50, civic={i: 1.0 for i in range(50)})
    many = [cand(n, political_orientation=3.0 + (n % 2) * 2) for n in range(100)]
    result = rank("challenging_stereotypes", items, ctx(many, scores))
    capped, was_capped = checks.apply_caps(
        result, [i.id for i in items], Caps(rule=cap_rule("challenging_stereotypes")), n_items=50
    )
    assert len(result.new_items) == 10
    assert not was_capped
    assert capped == result
    few = rank("challenging_stereotypes", items, ctx(many[:3], scores))
    assert len(few.new_items) == 3
    assert len(few.ranked_ids) == 50


# --- Diverse Approval ------------------------------------------------------------------------------------


def test_diverse_approval_replaces_every_civic_post_with_the_most_bridging_candidates():
    items, scores = slate(20, civic={1: 0.9, 5: 0.6, 6: 0.2, 9: 0.7})
    candidates = [
        cand(1, approval_republican=3.0, approval_democrat=5.0),
        cand(2, approval_republican=4.5, approval_democrat=4.0),
        cand(3, approval_republican=3.5, approval_democrat=3.5),
        cand(4, approval_republican=2.9, approval_democrat=5.0),  # not bridging
    ]
    result = rank("diverse_approval", items, ctx(candidates, scores))
    # 3 civic of 20 posts is 15 %: no top-up.
    assert [result.ranked_ids[i] for i in (1, 5, 9)] == ["prc-2", "prc-3", "prc-1"]
    assert len(result.ranked_ids) == 20
    assert "p6" in result.ranked_ids


def test_diverse_approval_tops_civic_posts_up_to_fifteen_percent_at_random_positions():
    items, scores = slate(40)
    candidates = [cand(n) for n in range(1, 20)]
    result = rank("diverse_approval", items, ctx(candidates, scores))
    assert len(result.new_items) == 8  # 8 / 48 >= 15 % > 7 / 47
    assert originals(result) == [f"p{i}" for i in range(40)]
    assert result.ranked_ids[: len(result.new_items)] != inserted(result)  # spread, not stacked on top


@given(n_posts=st.integers(0, 120), civic_share=st.floats(0, 1), pct=st.integers(0, 99))
def test_dosage_is_the_fewest_insertions_that_reach_the_minimum(n_posts: int, civic_share: float, pct: int):
    n_civic = int(n_posts * civic_share)
    k = insertions_for_dosage(n_posts, n_civic, pct)
    if n_posts == 0:
        assert k == 0
        return
    assert (n_civic + k) / (n_posts + k) >= pct / 100 - 1e-9
    if k > 0:
        assert (n_civic + k - 1) / (n_posts + k - 1) < pct / 100


def test_diverse_approval_takes_one_post_per_source_national_and_fresh_only():
    items, scores = slate(40)
    candidates = [
        cand(1, source_id=7),
        cand(2, source_id=7),  # same source
        cand(3, national_interest=False),  # local politics
        cand(4, posted_at=NOW - dt.timedelta(hours=25)),  # older than a day
        cand(5, civic=0.2),  # not civic
        cand(6),
    ]
    result = rank("diverse_approval", items, ctx(candidates, scores))
    assert sorted(inserted(result)) == ["prc-1", "prc-6"]
    local = rank("diverse_approval", items, ctx(candidates, scores, config={"national_interest_only": False}))
    assert "prc-3" in inserted(local)


def test_eligibility_needs_both_parties_at_the_threshold():
    settings = ins.arm_settings("diverse_approval", {})
    assert is_eligible(cand(1, approval_republican=3.0, approval_democrat=3.0), settings)
    assert not is_eligible(cand(1, approval_republican=None), settings)
    assert not is_eligible(cand(1, approval_democrat=2.99), settings)


# --- Add News ---------------------------------------------------------------------------------------------


def test_add_news_inserts_up_to_fifteen_percent_and_removes_nothing():
    items, _ = slate(50)
    candidates = [cand(n, lean=["left", "centre", "right"][n % 3]) for n in range(30)]
    result = rank("add_news", items, ctx(candidates))
    assert len(result.new_items) == 8  # 8 / 58 <= 15 % < 9 / 59
    assert originals(result) == [f"p{i}" for i in range(50)]
    _, was_capped = checks.apply_caps(result, [i.id for i in items], Caps(rule=cap_rule("add_news")), n_items=50)
    assert not was_capped


def test_add_news_counts_freshness_from_the_newest_scraped_post_not_the_clock():
    items, _ = slate(50)
    old = [cand(n, posted_at=NOW - dt.timedelta(days=5, hours=n)) for n in range(10)]
    stopped_scraper = ctx(old, inventory_newest_at=NOW - dt.timedelta(days=5))
    assert len(rank("add_news", items, stopped_scraper).new_items) == 8  # within 48 h of the newest post
    nothing_scraped = ctx(old, inventory_newest_at=None)
    assert rank("add_news", items, nothing_scraped).new_items == []
    too_old = [cand(99, posted_at=NOW - dt.timedelta(hours=49))]
    assert rank("add_news", items, ctx(too_old, inventory_newest_at=NOW)).new_items == []


def test_add_news_never_repeats_a_post_from_the_shown_cache_or_the_feed():
    items, _ = slate(50)
    items.append(SlateItem("t3_abc", "already in the feed", post_id="t3_abc"))
    candidates = [cand(1), cand(2), cand(3, post_id="t3_abc")]
    result = rank("add_news", items, ctx(candidates, shown=frozenset({"prc-1"})))
    assert inserted(result) == ["prc-2"]


def test_add_news_samples_leans_by_their_weights():
    rng = random.Random(5)
    pool = [cand(n, lean=lean) for n, lean in enumerate(["left", "centre", "right"] * 2000)]
    chosen = sample_by_lean(pool, {"left": 25, "centre": 50, "right": 25}, 4000, rng)
    shares = {lean: sum(c.lean == lean for c in chosen) / len(chosen) for lean in ("left", "centre", "right")}
    assert shares["centre"] == pytest.approx(0.5, abs=0.03)
    assert shares["left"] == pytest.approx(0.25, abs=0.03)
    only_left = sample_by_lean([cand(1, lean="left"), cand(2, lean="")], {"left": 1, "centre": 2}, 5, rng)
    assert [c.id for c in only_left] == ["prc-1"]  # unrated sources are never drawn


def test_add_news_settings_change_its_dosage():
    items, _ = slate(50)
    candidates = [cand(n) for n in range(30)]
    assert len(rank("add_news", items, ctx(candidates, config={"max_inserted_pct": 5})).new_items) == 2


# --- What all three share ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["challenging_stereotypes", "diverse_approval", "add_news"])
@pytest.mark.parametrize(
    "where",
    [
        {"content_type": "comment"},
        {"page_url": "https://www.reddit.com/r/politics/"},
        {"page_url": "https://x.com/someone"},
    ],
)
def test_inserting_arms_leave_comment_threads_and_other_pages_untouched(name: str, where: dict[str, Any]):
    items, scores = slate(30, civic={i: 0.9 for i in range(30)})
    result = rank(name, items, ctx([cand(n) for n in range(20)], scores, **where))
    assert result.ranked_ids == [i.id for i in items]
    assert result.new_items == []


@pytest.mark.parametrize("name", ["challenging_stereotypes", "diverse_approval", "add_news"])
def test_inserted_items_carry_the_posts_url_source_lean_and_annotation_version(name: str):
    items, scores = slate(30, civic={0: 0.9, 1: 0.9})
    result = rank(name, items, ctx([cand(1, lean="left", political_orientation=5.0)], scores))
    assert len(result.new_items) == 1
    item = result.new_items[0]
    assert (item.url, item.source_id, item.lean, item.annotation_version) == (
        "https://news.example.org/story/1", 1, "left", "v1",
    )  # fmt: skip


@pytest.mark.parametrize("name", ["challenging_stereotypes", "diverse_approval", "add_news"])
def test_the_same_request_ranks_the_same_way(name: str):
    items, scores = slate(40, civic={i: i / 40 for i in range(40)})
    candidates = [
        cand(n, political_orientation=3.0 + n % 3, lean=["left", "centre", "right"][n % 3]) for n in range(30)
    ]
    assert rank(name, items, ctx(candidates, scores)) == rank(name, items, ctx(candidates, scores))


def test_main_feeds_are_recognised_per_platform():
    assert ins.is_main_feed("reddit", "https://www.reddit.com/best/")
    assert not ins.is_main_feed("reddit", "https://www.reddit.com/r/news/")
    assert ins.is_main_feed("twitter", "https://x.com/home")
    assert not ins.is_main_feed("twitter", "https://x.com/search?q=news")
    assert ins.is_main_feed("facebook", "https://www.facebook.com/")
    assert not ins.is_main_feed("facebook", "https://www.facebook.com/groups/123")


@pytest.mark.parametrize(
    ("ranker_key", "config", "expected"),
    [
        ("add_news", {}, []),
        ("add_news", {"max_inserted_pct": 15, "budget_ms": 300}, []),
        ("add_news", {"max_inserted_pct": "15"}, ["max_inserted_pct"]),
        ("add_news", {"lean_weights": {"left": 1, "middle": 2}}, ["lean_weights"]),
        ("add_news", {"typo_pct": 3}, ["typo_pct"]),
        ("diverse_approval", {"min_civic_pct": 100}, ["min_civic_pct"]),
        ("diverse_approval", {"national_interest_only": "yes"}, ["national_interest_only"]),
        ("challenging_stereotypes", {"max_quality": {"is_nsfw": 2}}, ["is_nsfw"]),
        ("challenging_stereotypes", {"orientation_min": 5, "orientation_max": 3}, ["orientation_min"]),
        ("challenging_stereotypes", {"platform_min_quality": {"twitter": 0.5}}, ["platform_min_quality"]),
    ],
)
def test_arm_settings_are_validated_with_a_message_naming_the_setting(
    ranker_key: str, config: dict[str, Any], expected: list[str]
):
    problems = arm_settings_problems(ranker_key, config)
    assert len(problems) == len(expected)
    for problem, word in zip(problems, expected, strict=True):
        assert word in problem
