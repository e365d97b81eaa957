"""Outcome indexes of supplementary section 1.4, checked against values computed by hand."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surveys.indexes import item_scores, knowledge_score, raw_indexes, standardize
from surveys.library import headline_items


def polarization_row(ft_in: int, ft_out: int, sd_in: int, sd_out: int) -> dict[str, float]:
    return item_scores({"ft_in": ft_in, "ft_out": ft_out, "sd_in": sd_in, "sd_out": sd_out})


def test_affective_polarization_is_the_mean_of_the_two_standardized_in_minus_out_differences() -> None:
    # Control: ft_in 60/70/80 (mean 70, sd 10), ft_out 40/30/20 (30, 10), sd_in 5/6/7 (6, 1), sd_out 3/2/1 (2, 1).
    # Control indexes by hand: (-1, 0, 1), already mean 0 and sd 1. The treated row: thermometer
    # ((90-70)/10 - (10-30)/10) / 2 = 2, friends (0 - 0) / 2 = 0, index (2 + 0) / 2 = 1.
    rows = [polarization_row(60, 40, 5, 3), polarization_row(70, 30, 6, 2), polarization_row(80, 20, 7, 1)]
    rows.append(polarization_row(90, 10, 6, 2))

    result = standardize(rows, [True, True, True, False])

    assert [round(r["affective_polarization"], 9) for r in result] == [-1.0, 0.0, 1.0, 1.0]


def test_items_are_coded_and_oriented_as_the_index_definitions_need() -> None:
    answers = {
        "wellbeing": {"cheerful": 5, "calm": 4, "active": 3, "rested": 2},  # one statement unanswered
        "gss_trust": 30,
        "empathy": {"difficult": 2, "important": 6},
        "meaningful_facebook": "yes",
        "negative_facebook": "yes",
        "learned_x": "not_sure",
        "kalmoe_mason_1": 10,
        "kalmoe_mason_3": 0,
    }

    items = item_scores(answers)
    indexes = raw_indexes(items)

    assert items["trust"] == 70  # 0 = most people can be trusted
    assert items["empathy_difficult"] == 6  # reverse-keyed on 1..7
    assert (items["meaningful_facebook"], items["negative_facebook"], items["learned_x"]) == (1.0, 0.0, 0.5)
    assert indexes["wellbeing"] == pytest.approx((5 + 4 + 3 + 2) / 4 * 5)  # missing item: mean of the others
    assert indexes["violence_support"] == 10
    assert indexes["empathy"] == 12
    assert indexes["neely"] == pytest.approx((1.0 + 0.0 + 0.5) / 3 * 12)
    assert "knowledge" not in indexes


def test_knowledge_counts_true_as_true_and_false_as_false_with_unsure_wrong() -> None:
    key = headline_items(11)  # true, false, true, false, true
    answers = {"g11_1": "true", "g11_2": "false", "g11_3": "unsure", "g11_4": "true"}

    assert knowledge_score(answers, key) == pytest.approx(2 / 5)
    assert item_scores({"headlines": answers}, key)["knowledge"] == pytest.approx(0.4)
    assert knowledge_score({}, key) is None


def test_an_index_without_spread_in_the_control_group_is_left_out() -> None:
    rows = [item_scores({"gss_trust": 50}), item_scores({"gss_trust": 50}), item_scores({"gss_trust": 10})]

    assert standardize(rows, [True, True, False]) == [{}, {}, {}]


@settings(deadline=None)  # a pure function; a loaded CI machine must not fail it on time
@given(st.lists(st.tuples(st.integers(0, 100), st.integers(0, 100)), min_size=3, max_size=30))
def test_standardized_control_indexes_have_mean_zero_and_sd_one(values: list[tuple[int, int]]) -> None:
    rows = [item_scores({"kalmoe_mason_1": a, "kalmoe_mason_3": b}) for a, b in values]
    result = standardize(rows, [True] * len(rows))
    scores = [r["violence_support"] for r in result if "violence_support" in r]
    if not scores:
        return
    mean = sum(scores) / len(scores)
    sd = math.sqrt(sum((s - mean) ** 2 for s in scores) / (len(scores) - 1))
    assert abs(mean) < 1e-9
    assert sd == pytest.approx(1.0)


def test_trust_and_meta_perception_indexes_match_values_computed_by_hand() -> None:
    # Control: "can't be too careful" 30/50/70 -> trust 70/50/30 (mean 50, sd 20); outparty friends 2/6/4
    # (mean 4, sd 2); meta-perception items 10/20/30 (mean 20, sd 10) and 0/20/40 (mean 20, sd 20).
    # Control item z: trust (1, 0, -1), friends (-1, 1, 0): trust_index sums (0, 1, -1), mean 0 and sd 1 already.
    # Meta z (-1, 0, 1) twice: sums (-2, 0, 2), sd 2, so the index is (-1, 0, 1).
    # Treated: trust 90 -> z 2, friends 6 -> z 1: trust_index 3; meta_spv_1 40 -> z 2 with meta_spv_2 missing,
    # replaced by the mean of the present items: sum 4, standardized 4 / 2 = 2. Raw meta: 40 * 2 = 80.
    answers = [
        {"gss_trust": 30, "sd_out": 2, "meta_spv_1": 10, "meta_spv_2": 0},
        {"gss_trust": 50, "sd_out": 6, "meta_spv_1": 20, "meta_spv_2": 20},
        {"gss_trust": 70, "sd_out": 4, "meta_spv_1": 30, "meta_spv_2": 40},
        {"gss_trust": 10, "sd_out": 6, "meta_spv_1": 40},
    ]
    rows = [item_scores(a) for a in answers]

    result = standardize(rows, [True, True, True, False])

    assert [round(r["trust_index"], 9) for r in result] == [0.0, 1.0, -1.0, 3.0]
    assert [round(r["trust"], 9) for r in result] == [1.0, 0.0, -1.0, 2.0]
    assert [round(r["meta_perceptions"], 9) for r in result] == [-1.0, 0.0, 1.0, 2.0]
    assert raw_indexes(rows[3])["meta_perceptions"] == 80
    assert raw_indexes(rows[3])["trust_index"] == 96
