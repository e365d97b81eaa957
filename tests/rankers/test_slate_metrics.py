"""The per-slate measures as pure functions: the paper's normalized rank change and extrapolated RBO."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rankers.slate_metrics import normalized_rank_change, rank_biased_overlap, slate_change

ids = st.lists(st.text("abcdefghijklmnop", min_size=1, max_size=2), max_size=40, unique=True)


@given(st.integers(1, 80))
def test_reversing_a_whole_slate_moves_items_by_about_half_its_length(n: int) -> None:
    original = [f"i{k}" for k in range(n)]

    assert normalized_rank_change(original, original[::-1]) == pytest.approx((n * n // 2) / (n * n))


@given(st.integers(1, 50), st.integers(0, 30))
def test_items_past_the_slate_that_stay_put_change_nothing(n: int, extra: int) -> None:
    movable = [f"m{k}" for k in range(n)]
    tail = [f"t{k}" for k in range(extra)]

    with_tail = normalized_rank_change(movable + tail, movable[::-1] + tail, movable, n)

    assert with_tail == normalized_rank_change(movable, movable[::-1])


def test_the_paper_example_a_60_item_request_with_50_reversed_is_one_half() -> None:
    original = [f"p{k}" for k in range(60)]
    returned = original[:50][::-1] + original[50:]

    assert normalized_rank_change(original, returned, original[:50], 50) == 0.5
    assert normalized_rank_change(original, returned) != 0.5  # the old definition: every item, over 60


def test_added_and_deleted_items_are_not_counted_but_shift_the_others() -> None:
    # "b" is deleted, "x" inserted at the top: a moves 0 -> 1, c stays at 2, d stays at 3.
    change = slate_change(["a", "b", "c", "d"], ["x", "a", "c", "d"], ["a", "b", "c", "d"], 4)

    assert change.nrc == pytest.approx((1 + 0 + 0) / 3 / 4)
    assert (change.added_ids, change.deleted_ids) == (["x"], ["b"])


def _rbo_eq32(a: list[str], b: list[str], p: float) -> float:
    """Webber et al. (2010) eq. 32 written out with set intersections, as a check on the single-pass version."""
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    s, l = len(short), len(long_)  # noqa: E741 (the paper's names)

    def overlap(d: int) -> int:
        return len(set(short[:d]) & set(long_[:d]))

    x_s, x_l = overlap(s), overlap(l)
    first = sum(overlap(d) / d * p**d for d in range(1, l + 1))
    second = sum(x_s * (d - s) / (s * d) * p**d for d in range(s + 1, l + 1))
    return (1 - p) / p * (first + second) + ((x_l - x_s) / l + x_s / s) * p**l


@given(ids, ids, st.sampled_from([0.5, 0.9, 0.98]))
def test_rbo_is_the_extrapolated_form_for_lists_of_any_lengths(a: list[str], b: list[str], p: float) -> None:
    value = rank_biased_overlap(a, b, p)
    if not a and not b:
        assert value is None
    elif not a or not b:
        assert value == 0.0
    else:
        assert value == pytest.approx(_rbo_eq32(a, b, p))
        assert value == pytest.approx(rank_biased_overlap(b, a, p))
        assert -1e-9 <= value <= 1 + 1e-9


@given(ids.filter(bool), st.integers(0, 10))
def test_a_list_and_its_own_prefix_extrapolate_to_full_agreement(a: list[str], cut: int) -> None:
    prefix = a[: max(1, len(a) - cut)]

    assert rank_biased_overlap(prefix, a) == pytest.approx(1.0)
