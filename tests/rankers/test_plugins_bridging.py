"""Property tests for the Perspective arms (paper, section 3.1 and Tables S13-S14)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rankers.plugins import get_ranker
from rankers.plugins.base import RankContext, SlateItem
from rankers.plugins.bridging import (
    BRIDGING_DOWNRANK_TOXIC_WEIGHTS,
    UPRANK_BRIDGING_WEIGHTS,
    neutral_fill,
    rank_by_weights,
    weighted_score,
)
from rankers.scoring import attributes as A

RANKERS = {"uprank_bridging": UPRANK_BRIDGING_WEIGHTS, "bridging_downrank_toxic": BRIDGING_DOWNRANK_TOXIC_WEIGHTS}
ALL_WEIGHTED = tuple(BRIDGING_DOWNRANK_TOXIC_WEIGHTS)

# A few distinct score levels so that ties happen often.
score_value = st.sampled_from([0.0, 0.25, 0.5, 1.0])
full_scores = st.fixed_dictionaries({a: score_value for a in ALL_WEIGHTED})
maybe_scores = st.one_of(
    st.none(), full_scores, full_scores.map(lambda s: {k: v for k, v in s.items() if k != A.INSULT})
)
slates = st.lists(maybe_scores, max_size=30)


def context(scores: Mapping[str, Mapping[str, float]]) -> RankContext:
    return RankContext(
        platform="reddit", content_type="post", user_id="u1", now=dt.datetime(2024, 10, 1), scores=scores
    )


def run(name: str, slate: list[dict[str, float] | None]) -> tuple[list[str], list[str], dict[str, dict[str, float]]]:
    ids = [f"item-{i}" for i in range(len(slate))]
    scores = {item_id: s for item_id, s in zip(ids, slate, strict=True) if s is not None}
    items = [SlateItem(item_id, "text") for item_id in ids]
    return ids, get_ranker(name).rank(items, context(scores)).ranked_ids, scores


@pytest.mark.parametrize("name", RANKERS)
@given(slate=slates)
def test_output_is_a_permutation_of_the_input_ids(name: str, slate: list[dict[str, float] | None]) -> None:
    ids, ranked, _ = run(name, slate)

    assert sorted(ranked) == sorted(ids)
    assert len(set(ranked)) == len(ranked)


@pytest.mark.parametrize("name", RANKERS)
@given(slate=slates)
def test_scored_items_are_ordered_by_weighted_score_and_ties_keep_their_order(
    name: str, slate: list[dict[str, float] | None]
) -> None:
    ids, ranked, scores = run(name, slate)
    weights = RANKERS[name]
    value = {i: weighted_score(scores.get(i), weights) for i in ids}
    scored = [i for i in ranked if value[i] is not None]

    for earlier, later in itertools.pairwise(scored):
        assert value[earlier] >= value[later]  # type: ignore[operator]
        if value[earlier] == value[later]:
            assert ids.index(earlier) < ids.index(later)


@pytest.mark.parametrize("name", RANKERS)
@given(slate=slates)
def test_unscored_items_follow_their_preceding_neighbour(name: str, slate: list[dict[str, float] | None]) -> None:
    ids, ranked, scores = run(name, slate)
    weights = RANKERS[name]
    value = {i: weighted_score(scores.get(i), weights) for i in ids}
    first_scored = next((i for i in ids if value[i] is not None), None)

    for position, item_id in enumerate(ids):
        if value[item_id] is not None or first_scored is None:
            continue
        before = [i for i in ids[:position] if value[i] is not None]
        if before:
            # Right after its neighbour, give or take other items that share the neighbour's value.
            neighbour = before[-1]
            between = ranked[ranked.index(neighbour) + 1 : ranked.index(item_id)]
            assert ranked.index(neighbour) < ranked.index(item_id)
            assert all(value[i] is None or value[i] == value[neighbour] for i in between)
        else:  # leading unscored items travel just before the first scored item
            assert ranked.index(item_id) < ranked.index(first_scored)


@pytest.mark.parametrize("name", RANKERS)
@given(slate=st.lists(st.one_of(st.none(), st.just({})), max_size=20))
def test_a_slate_without_scores_keeps_its_original_order(name: str, slate: list[dict[str, float] | None]) -> None:
    ids, ranked, _ = run(name, slate)

    assert ranked == ids


@pytest.mark.parametrize("name", RANKERS)
@given(scores=full_scores, n=st.integers(min_value=0, max_value=20))
def test_equal_scores_keep_the_original_order(name: str, scores: dict[str, float], n: int) -> None:
    ids, ranked, _ = run(name, [scores] * n)

    assert ranked == ids


def test_weights_match_tables_s13_and_s14() -> None:
    assert dict.fromkeys(A.BRIDGING, pytest.approx(1 / 6)) == UPRANK_BRIDGING_WEIGHTS
    toxic = BRIDGING_DOWNRANK_TOXIC_WEIGHTS
    assert sum(w for w in toxic.values() if w > 0) == pytest.approx(1.0)
    # bridging - 1/2 persuasion - 1/2 toxicity
    assert sum(toxic[a] for a in A.PERSUASION) == pytest.approx(-0.5)
    assert sum(toxic[a] for a in A.TOXIC) == pytest.approx(-0.5)
    assert toxic[A.GENERALIZATION] == pytest.approx(-1 / 6)
    assert toxic[A.SCAPEGOATING] == toxic[A.MORAL_OUTRAGE] == toxic[A.ALIENATION] == pytest.approx(-1 / 18)


def test_downrank_toxic_puts_a_toxic_item_below_a_neutral_one_that_uprank_bridging_ties_with_it() -> None:
    neutral = dict.fromkeys(ALL_WEIGHTED, 0.0)
    toxic = {**neutral, A.TOXICITY: 1.0, A.INSULT: 1.0}
    slate: list[dict[str, float] | None] = [toxic, neutral]

    assert run("uprank_bridging", slate)[1] == ["item-0", "item-1"]
    assert run("bridging_downrank_toxic", slate)[1] == ["item-1", "item-0"]


def test_an_item_missing_one_weighted_attribute_is_unscored() -> None:
    assert weighted_score({a: 1.0 for a in A.BRIDGING[:-1]}, UPRANK_BRIDGING_WEIGHTS) is None
    assert (
        weighted_score({**dict.fromkeys(A.BRIDGING, 0.5), A.CURIOSITY: float("nan")}, UPRANK_BRIDGING_WEIGHTS) is None
    )


def test_neutral_fill_copies_the_preceding_value_or_the_first_one() -> None:
    assert neutral_fill([None, 0.2, None, 0.9, None]) == [0.2, 0.2, 0.2, 0.9, 0.9]
    assert neutral_fill([None, None]) is None
    assert neutral_fill([]) is None


def test_rank_by_weights_example() -> None:
    weights = {"A": 1.0}
    scores = {"low": {"A": 0.1}, "high": {"A": 0.9}, "mid": {"A": 0.5}}

    assert rank_by_weights(["low", "unscored", "high", "mid"], scores, weights) == ["high", "mid", "low", "unscored"]


def hand_scores(**scores: float) -> dict[str, float]:
    """Every weighted attribute (and NUANCE, which carries no weight) at 0 except those given."""
    return {**dict.fromkeys((*ALL_WEIGHTED, A.NUANCE), 0.0), **scores}


SIX_AT_06 = dict.fromkeys(A.BRIDGING, 0.6)
# A slate worked out by hand. Values: Table S13 = mean of the six bridging attributes; Table S14 = that
# - 1/6 (fearmongering, stereotyping) - 1/18 (scapegoating, moral outrage, alienation) - 1/8 (each toxic one).
HAND_SLATE: dict[str, dict[str, float]] = {
    # S13: 0.6                      S14: 0.6 - 0.6/6 = 0.5
    "a": hand_scores(**SIX_AT_06, FEARMONGERING=0.6),
    # S13: 0.6                      S14: 0.6 - 0.9/18 = 0.55
    "b": hand_scores(**SIX_AT_06, SCAPEGOATING=0.9),
    # S13: 0.6                      S14: 0.6 - 0.6/8 = 0.525
    "c": hand_scores(**SIX_AT_06, TOXICITY=0.6),
    # S13: 2/6 = 0.3333             S14: 2/6 - 0.6/6 - 0.8/8 = 0.1333
    "d": hand_scores(REASONING=1.0, PERSONAL_STORY=1.0, GENERALIZATION=0.6, INSULT=0.8),
    # S13: 0.5                      S14: INSULT missing, so unscored: travels with "d"
    "u": {a: v for a, v in hand_scores(**dict.fromkeys(A.BRIDGING, 0.5)).items() if a != A.INSULT},
    # S13: 0.9/6 = 0.15             S14: 0.15 (NUANCE has no weight)
    "e": hand_scores(CURIOSITY=0.9, NUANCE=1.0),
    # S13: 0                        S14: -0.4/8 - 0.4/8 - 0.9/18 - 0.9/18 = -0.2
    "f": hand_scores(IDENTITY_ATTACK=0.4, THREAT=0.4, MORAL_OUTRAGE=0.9, ALIENATION=0.9),
    # S13: 1.8/6 = 0.3              S14: 0.3
    "g": hand_scores(AFFINITY=0.6, COMPASSION=0.6, RESPECT=0.6),
}
HAND_VALUES = {
    "uprank_bridging": {"a": 0.6, "b": 0.6, "c": 0.6, "d": 1 / 3, "u": 0.5, "e": 0.15, "f": 0.0, "g": 0.3},
    "bridging_downrank_toxic": {
        "a": 0.5,
        "b": 0.55,
        "c": 0.525,
        "d": 2 / 15,
        "u": None,
        "e": 0.15,
        "f": -0.2,
        "g": 0.3,
    },
}
HAND_ORDERS = {
    "uprank_bridging": ["a", "b", "c", "u", "d", "g", "e", "f"],  # the three 0.6 ties keep their order
    "bridging_downrank_toxic": ["b", "c", "a", "g", "e", "d", "u", "f"],
}


@pytest.mark.parametrize("name", RANKERS)
def test_hand_computed_slate_gets_the_values_of_tables_s13_and_s14(name: str) -> None:
    values = {item_id: weighted_score(scores, RANKERS[name]) for item_id, scores in HAND_SLATE.items()}

    assert values == {k: (None if v is None else pytest.approx(v)) for k, v in HAND_VALUES[name].items()}


@pytest.mark.parametrize("name", RANKERS)
def test_hand_computed_slate_is_ranked_in_the_hand_worked_order(name: str) -> None:
    items = [SlateItem(item_id, "text") for item_id in HAND_SLATE]

    assert get_ranker(name).rank(items, context(HAND_SLATE)).ranked_ids == HAND_ORDERS[name]
