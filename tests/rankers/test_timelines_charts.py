"""The pure half of the timelines: the moving average and the figures built from plain rows."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rankers.charts import (
    TIMELINE_METRICS,
    DeliveryRow,
    TimelinePoint,
    days_between,
    fallback_figure,
    intervened_figure,
    latency_figure,
    moving_average,
    timeline_figure,
)

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
series = st.lists(st.one_of(st.none(), finite), max_size=60)
windows = st.integers(min_value=1, max_value=10)


@given(series, windows)
def test_moving_average_keeps_one_value_per_day(values: list[float | None], window: int) -> None:
    assert len(moving_average(values, window)) == len(values)


@given(series, windows)
def test_moving_average_stays_within_its_window(values: list[float | None], window: int) -> None:
    for i, avg in enumerate(moving_average(values, window)):
        known = [v for v in values[max(0, i - window + 1) : i + 1] if v is not None]
        if not known:
            assert avg is None
        else:
            assert avg is not None
            assert min(known) - 1e-6 <= avg <= max(known) + 1e-6


@given(finite, st.integers(min_value=0, max_value=40), windows)
def test_moving_average_of_a_constant_is_that_constant(value: float, n: int, window: int) -> None:
    assert moving_average([value] * n, window) == pytest.approx([value] * n)


@given(series)
def test_a_one_day_window_changes_nothing(values: list[float | None]) -> None:
    assert moving_average(values, 1) == values


def test_five_day_average_is_trailing_and_skips_gaps() -> None:
    assert moving_average([1, 2, 3, 4, 5, 6, None, None, None, None, None, 1]) == pytest.approx(
        [1, 1.5, 2, 2.5, 3, 4, 4.5, 5, 5.5, 6, None, 1]
    )


def test_moving_average_rejects_an_empty_window() -> None:
    with pytest.raises(ValueError, match="window"):
        moving_average([1.0], 0)


def test_days_between_includes_both_ends() -> None:
    assert days_between(dt.date(2024, 2, 28), dt.date(2024, 3, 1)) == [
        dt.date(2024, 2, 28),
        dt.date(2024, 2, 29),
        dt.date(2024, 3, 1),
    ]


def point(day: int, arm: str, nrc: float | None, added: float = 0.0, deleted: float = 0.0) -> TimelinePoint:
    return TimelinePoint(dt.date(2024, 10, day), arm, 10, nrc, added, deleted)


def test_timeline_has_one_trace_per_arm_over_every_day_in_range() -> None:
    arms = [("control", "Control"), ("uprank_bridging", "Uprank Bridging"), ("add_news", "Add News")]
    points = [point(1, "uprank_bridging", 0.3), point(3, "uprank_bridging", 0.5), point(2, "control", 0.0)]
    fig = timeline_figure(
        points, metric=TIMELINE_METRICS[0], arms=arms, start=dt.date(2024, 10, 1), end=dt.date(2024, 10, 4)
    )
    assert [trace.name for trace in fig.data] == ["Control", "Uprank Bridging", "Add News"]
    bridging = fig.data[1]
    assert list(bridging.x) == ["2024-10-01", "2024-10-02", "2024-10-03", "2024-10-04"]
    assert list(bridging.y) == [pytest.approx(0.3), None, pytest.approx(0.4), None]  # no line where no data
    assert [c[0] for c in bridging.customdata] == [0.3, None, 0.5, None]
    assert list(fig.data[2].y) == [None] * 4
    assert "5-day moving average" in fig.layout.title.text


def test_each_metric_reads_its_own_field() -> None:
    points = [point(1, "add_news", 0.1, added=3.0, deleted=0.0)]
    first = {
        m.field: timeline_figure(
            points, metric=m, arms=[("add_news", "Add News")], start=dt.date(2024, 10, 1), end=dt.date(2024, 10, 1)
        )
        .data[0]
        .y[0]
        for m in TIMELINE_METRICS
    }
    assert first == {"nrc_mean": 0.1, "added_mean": 3.0, "deleted_mean": 0.0}


def test_an_arm_keeps_its_colour_in_every_timeline() -> None:
    arms = [("control", "Control"), ("add_news", "Add News")]
    figs = [
        timeline_figure([], metric=m, arms=arms, start=dt.date(2024, 10, 1), end=dt.date(2024, 10, 2))
        for m in TIMELINE_METRICS
    ]
    assert len({tuple(trace.line.color for trace in fig.data) for fig in figs}) == 1


def delivery_row(arm: str, slates: int, intervened: int, fallbacks: dict[str, int]) -> DeliveryRow:
    return DeliveryRow(arm, slates, intervened, fallbacks, 40.0, 120.0, 501.0, 530.0)


def test_delivery_figures_show_share_intervened_fallbacks_and_the_budget() -> None:
    rows = [
        delivery_row("control", 100, 100, {}),
        delivery_row("uprank_bridging", 200, 150, {"timeout": 40, "ranker_error": 10}),
    ]
    arms = [("control", "Control"), ("uprank_bridging", "Uprank Bridging")]
    assert list(intervened_figure(rows, arms=arms).data[0].y) == [1.0, 0.75]
    fallbacks = fallback_figure(rows, arms=arms)
    assert {trace.name: list(trace.y) for trace in fallbacks.data} == {
        "ranker_error": [0, 0.05],
        "timeout": [0, 0.2],
    }
    latency = latency_figure(rows, arms=arms, hold_ms=500)
    assert [trace.name for trace in latency.data] == ["ranker p50", "ranker p95", "served p50", "served p95"]
    assert latency.layout.shapes[0].y0 == 500


def test_delivery_bars_use_the_timeline_colour_of_each_arm() -> None:
    arms = [("control", "Control"), ("uprank_bridging", "Uprank Bridging"), ("add_news", "Add News")]
    timeline = timeline_figure(
        [], metric=TIMELINE_METRICS[0], arms=arms, start=dt.date(2024, 10, 1), end=dt.date(2024, 10, 1)
    )
    bars = intervened_figure([delivery_row("add_news", 10, 10, {})], arms=arms)
    assert list(bars.data[0].marker.color) == [timeline.data[2].line.color]


def test_no_fallbacks_is_said_in_words() -> None:
    fig = fallback_figure([delivery_row("control", 10, 10, {})], arms=[("control", "Control")])
    assert fig.data == ()
    assert fig.layout.annotations[0].text == "No fallbacks in this range"
