"""Plotly figures for the ranking dashboards, built from the plain rows of ``rankers.dashboard``.

Nothing here touches the database: a figure is a function of its rows, so the
charts can be tested with a list.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import plotly.graph_objects as go
from plotly.colors import qualitative

MOVING_AVERAGE_DAYS = 5
PALETTE = qualitative.Plotly


@dataclass(frozen=True)
class TimelinePoint:
    """One arm on one day, pooled over the selected content types."""

    day: dt.date
    arm_slug: str
    slates: int
    nrc_mean: float | None
    added_mean: float
    deleted_mean: float


@dataclass(frozen=True)
class DeliveryRow:
    """One arm over a date range."""

    arm_slug: str
    slates: int
    slates_intervened: int
    fallbacks: dict[str, int]
    ranker_p50_ms: float | None
    ranker_p95_ms: float | None
    served_p50_ms: float | None
    served_p95_ms: float | None
    scoring_items: int = 0  # items in slates whose ranker reads attributes
    scored_items: int = 0  # of those, scored on every attribute the ranker reads
    capped_slates: int = 0  # slates whose insertions or removals were trimmed to the arm's caps

    @property
    def intervened_share(self) -> float | None:
        return self.slates_intervened / self.slates if self.slates else None

    @property
    def scored_share(self) -> float | None:
        """Share of items scored, for arms whose ranker reads attributes (None for the others)."""
        return self.scored_items / self.scoring_items if self.scoring_items else None


@dataclass(frozen=True)
class Metric:
    field: str
    title: str
    axis: str


TIMELINE_METRICS = (
    Metric("nrc_mean", "Normalized rank change", "mean |Δrank| / slate length"),
    Metric("added_mean", "Items added", "added per slate"),
    Metric("deleted_mean", "Items deleted", "deleted per slate"),
)


def moving_average(values: Sequence[float | None], window: int = MOVING_AVERAGE_DAYS) -> list[float | None]:
    """Trailing mean over ``window`` positions, skipping gaps.

    Position ``i`` averages the known values among ``values[i - window + 1 : i + 1]``
    (fewer at the start); it is ``None`` only when that whole stretch is unknown.
    """
    if window < 1:
        raise ValueError("window must be at least 1")
    out: list[float | None] = []
    for i in range(len(values)):
        known = [v for v in values[max(0, i - window + 1) : i + 1] if v is not None]
        out.append(sum(known) / len(known) if known else None)
    return out


def days_between(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every calendar day from ``start`` to ``end`` inclusive."""
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]


def arm_colours(arm_slugs: Sequence[str]) -> dict[str, str]:
    """A stable colour per arm so that one arm looks the same in every chart of a page."""
    return {slug: PALETTE[i % len(PALETTE)] for i, slug in enumerate(arm_slugs)}


def timeline_figure(
    points: Iterable[TimelinePoint],
    *,
    metric: Metric,
    arms: Sequence[tuple[str, str]],
    start: dt.date,
    end: dt.date,
    window: int = MOVING_AVERAGE_DAYS,
) -> go.Figure:
    """One line per arm: the ``window``-day trailing moving average of ``metric`` on every day in range.

    ``arms`` is ``(slug, label)`` in display order; an arm without data still gets
    its (empty) trace so that every chart has the same legend.
    """
    days = days_between(start, end)
    daily: dict[tuple[str, dt.date], float | None] = {
        (p.arm_slug, p.day): getattr(p, metric.field) for p in points if p.slates
    }
    colours = arm_colours([slug for slug, _ in arms])
    fig = go.Figure()
    for slug, label in arms:
        raw = [daily.get((slug, day)) for day in days]
        # The average is drawn only on days the arm has data, so a line never runs on past the data.
        smoothed = [
            avg if value is not None else None for avg, value in zip(moving_average(raw, window), raw, strict=True)
        ]
        fig.add_trace(
            go.Scatter(
                x=[day.isoformat() for day in days],
                y=smoothed,
                customdata=[[v] for v in raw],
                name=label,
                mode="lines+markers",  # markers keep a day with data on both sides missing visible
                line={"color": colours[slug], "width": 2},
                marker={"size": 4},
                connectgaps=False,
                hovertemplate=(
                    f"{label}<br>%{{x}}<br>{window}-day average %{{y:.3f}}<br>"
                    "that day %{customdata[0]:.3f}<extra></extra>"
                ),
            )
        )
    fig.update_layout(
        title={"text": f"{metric.title}, {window}-day moving average"},
        yaxis_title=metric.axis,
        yaxis_rangemode="tozero",
        hovermode="closest",
        height=320,
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
        legend={"orientation": "h", "y": -0.25},
        template="plotly_white",
    )
    return fig


def intervened_figure(rows: Sequence[DeliveryRow], *, arms: Sequence[tuple[str, str]]) -> go.Figure:
    """Share of slates each arm actually reordered (the rest fell back to the original order)."""
    labels, colours = dict(arms), arm_colours([slug for slug, _ in arms])
    fig = go.Figure(
        go.Bar(
            x=[labels.get(row.arm_slug, row.arm_slug) for row in rows],
            y=[row.intervened_share for row in rows],
            marker_color=[colours.get(row.arm_slug, PALETTE[0]) for row in rows],
            customdata=[[row.slates_intervened, row.slates] for row in rows],
            hovertemplate="%{x}<br>%{y:.1%} (%{customdata[0]} of %{customdata[1]} slates)<extra></extra>",
        )
    )
    fig.update_layout(
        title={"text": "Share of slates intervened"},
        yaxis={"tickformat": ".0%", "range": [0, 1.05]},
        height=320,
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
        template="plotly_white",
    )
    return fig


def fallback_figure(rows: Sequence[DeliveryRow], *, arms: Sequence[tuple[str, str]]) -> go.Figure:
    """Fallbacks per arm, stacked by reason, as a share of the arm's slates."""
    labels = dict(arms)
    reasons = sorted({reason for row in rows for reason in row.fallbacks})
    fig = go.Figure()
    for reason in reasons:
        fig.add_trace(
            go.Bar(
                name=reason,
                x=[labels.get(row.arm_slug, row.arm_slug) for row in rows],
                y=[row.fallbacks.get(reason, 0) / row.slates if row.slates else 0 for row in rows],
                customdata=[[row.fallbacks.get(reason, 0)] for row in rows],
                hovertemplate=f"{reason}<br>%{{x}}: %{{y:.2%}} (%{{customdata[0]}} slates)<extra></extra>",
            )
        )
    if not reasons:
        fig.add_annotation(text="No fallbacks in this range", showarrow=False, font={"size": 16})
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
    fig.update_layout(
        barmode="stack",
        title={"text": "Fallbacks by reason (share of slates)"},
        yaxis={"tickformat": ".1%", "rangemode": "tozero"},
        height=320,
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
        template="plotly_white",
    )
    return fig


def latency_figure(rows: Sequence[DeliveryRow], *, arms: Sequence[tuple[str, str]], hold_ms: int) -> go.Figure:
    """Ranker and served time per arm, p50 and p95, against the study's hold budget."""
    labels = dict(arms)
    x = [labels.get(row.arm_slug, row.arm_slug) for row in rows]
    series = (
        ("ranker p50", "ranker_p50_ms", "#9ecae1"),
        ("ranker p95", "ranker_p95_ms", "#3182bd"),
        ("served p50", "served_p50_ms", "#fdae6b"),
        ("served p95", "served_p95_ms", "#e6550d"),
    )
    fig = go.Figure()
    for name, field, colour in series:
        fig.add_trace(
            go.Bar(
                name=name,
                x=x,
                y=[getattr(row, field) for row in rows],
                marker_color=colour,
                hovertemplate=f"{name}<br>%{{x}}: %{{y:.0f}} ms<extra></extra>",
            )
        )
    fig.add_hline(y=hold_ms, line_dash="dash", line_color="#444", annotation_text=f"hold budget {hold_ms} ms")
    fig.update_layout(
        barmode="group",
        title={"text": "Latency against the hold budget"},
        yaxis_title="ms",
        height=360,
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
        template="plotly_white",
    )
    return fig


def scoring_figure(minutes: Sequence[tuple[dt.datetime, float | None, int, int]]) -> go.Figure:
    """Per minute: the share of wanted items scored at the answer, and the jobs refused or expired (shed work).

    ``minutes`` are (minute, scored share or None, jobs refused, jobs expired)."""
    times = [minute for minute, *_ in minutes]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=times, y=[share for _, share, _, _ in minutes], name="items scored", mode="lines+markers")
    )
    fig.add_trace(go.Bar(x=times, y=[refused for *_, refused, _ in minutes], name="jobs refused", yaxis="y2"))
    fig.add_trace(go.Bar(x=times, y=[expired for *_, expired in minutes], name="jobs expired", yaxis="y2"))
    fig.update_layout(
        title={"text": "Scoring service, last hour (UTC)"},
        yaxis={"tickformat": ".0%", "range": [0, 1.05], "title": "share scored"},
        yaxis2={"overlaying": "y", "side": "right", "title": "jobs", "rangemode": "tozero"},
        barmode="stack",
        height=320,
        margin={"l": 60, "r": 60, "t": 50, "b": 40},
        template="plotly_white",
    )
    return fig


def figure_html(fig: go.Figure, *, div_id: str) -> str:
    """The figure as a ``<div>`` and its script; plotly.js itself is loaded once by the page."""
    html: str = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config={"displaylogo": False, "responsive": True},
    )
    return html
