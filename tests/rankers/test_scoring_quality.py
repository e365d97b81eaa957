"""AUC-ROC, Brier score and calibration of a scorer against labels (rankers.scoring.quality)."""

from __future__ import annotations

from itertools import product
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rankers.scoring import attributes as A
from rankers.scoring.quality import (
    LabelFileError,
    attribute_quality,
    brier_score,
    calibration_bins,
    expected_calibration_error,
    read_labels,
    roc_auc,
)


def pairwise_auc(scores: list[float], labels: list[float]) -> float:
    """The definition: the share of (positive, negative) pairs the positive wins, ties counting half."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y >= 0.5]
    neg = [s for s, y in zip(scores, labels, strict=True) if y < 0.5]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_auc_of_a_hand_made_ranking() -> None:
    # Positives 0.9, 0.7, 0.2; negatives 0.8, 0.3, 0.1: the positives win 3 + 2 + 1 of the 9 pairs.
    assert roc_auc([0.9, 0.8, 0.7, 0.3, 0.2, 0.1], [1, 0, 1, 0, 1, 0]) == pytest.approx(6 / 9)


def test_auc_is_one_for_a_perfect_ranking_zero_for_a_reversed_one_and_a_half_for_ties() -> None:
    assert roc_auc([0.9, 0.6, 0.4, 0.1], [1, 1, 0, 0]) == 1.0
    assert roc_auc([0.1, 0.4, 0.6, 0.9], [1, 1, 0, 0]) == 0.0
    assert roc_auc([0.5, 0.5, 0.5], [1, 0, 0]) == 0.5


def test_auc_is_undefined_with_one_class_only() -> None:
    assert roc_auc([0.2, 0.9], [1, 1]) is None
    assert roc_auc([0.2, 0.9], [0, 0.4]) is None


@given(
    st.lists(
        st.tuples(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 1.0]), st.sampled_from([0.0, 0.3, 0.5, 1.0])),
        min_size=2,
        max_size=40,
    )
)
def test_auc_agrees_with_counting_every_pair(pairs: list[tuple[float, float]]) -> None:
    scores, labels = [s for s, _ in pairs], [y for _, y in pairs]
    expected = None if len({y >= 0.5 for y in labels}) < 2 else pairwise_auc(scores, labels)

    auc = roc_auc(scores, labels)

    assert auc == (None if expected is None else pytest.approx(expected))


def test_brier_score_is_the_mean_squared_gap_to_the_outcome() -> None:
    # (0.1² + 0.8² + 0.3² + 0.3² + 0.8² + 0.1²) / 6 = 1.48 / 6; a label of 0.4 counts as negative.
    assert brier_score([0.9, 0.8, 0.7, 0.3, 0.2, 0.1], [1, 0, 1, 0, 1, 0.4]) == pytest.approx(1.48 / 6)


def test_calibration_bins_compare_the_mean_score_with_the_positive_share() -> None:
    bins = calibration_bins([0.05, 0.15, 0.12, 0.95, 1.0], [0, 1, 0, 1, 1], n_bins=10)

    assert [(b.low, b.count) for b in bins] == [(0.0, 1), (0.1, 2), (0.9, 2)]  # 1.0 falls in the last bin
    assert bins[1].mean_score == pytest.approx(0.135)
    assert bins[1].positive_share == 0.5
    # |0.05 - 0| x 1 + |0.135 - 0.5| x 2 + |0.975 - 1| x 2, over 5 texts.
    assert expected_calibration_error(bins) == pytest.approx((0.05 + 0.73 + 0.05) / 5)


def test_unscored_texts_are_counted_but_left_out_of_the_metrics() -> None:
    quality = attribute_quality(A.INSULT, [0.9, None, 0.1], [1, 1, 0])

    assert (quality.count, quality.positives, quality.unscored, quality.auc) == (2, 1, 1, 1.0)


def test_a_label_file_names_the_line_of_a_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("text,attribute,label\nfine,Personal story,1\nbad,REASONING,1.5\n")

    with pytest.raises(LabelFileError, match=r"labels.csv:3: label 1.5 is outside \[0, 1\]"):
        read_labels(path)


def test_a_label_file_accepts_the_papers_and_perspectives_attribute_names(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("text,attribute,label\na,Stereotyping,1\nb,REASONING_EXPERIMENTAL,0\nc,Moral outrage,0.7\n")

    assert [(r.attribute, r.label) for r in read_labels(path)] == [
        (A.GENERALIZATION, 1.0),
        (A.REASONING, 0.0),
        (A.MORAL_OUTRAGE, 0.7),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("text,label\na,1\n", "missing column"),
        ("text,attribute,label\na,Kindness,1\n", "unknown attribute 'Kindness'"),
        ("text,attribute,label\n", "no labelled rows"),
    ],
)
def test_a_label_file_that_cannot_be_used_is_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(content)

    with pytest.raises(LabelFileError, match=message):
        read_labels(path)
