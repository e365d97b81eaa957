"""Figures of the content health page, from the plain rows of ``rankers.content.dashboard``; no database."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from participants.paper import PLATFORM_LABELS, PLATFORMS
from rankers.content.dashboard import UNRATED, PoolRow, SourceRow
from rankers.content.models import Lean

LEAN_COLOURS = {Lean.LEFT: "#2b6cb0", Lean.CENTRE: "#718096", Lean.RIGHT: "#c53030", UNRATED: "#cbd5e0"}
LEAN_LABELS = {**dict(Lean.choices), UNRATED: "Not rated"}
LAYOUT = {"margin": {"l": 60, "r": 20, "t": 50, "b": 40}, "template": "plotly_white"}


def pool_figure(rows: Sequence[PoolRow], *, limit_h: float) -> go.Figure:
    """Fresh posts per platform, stacked by the lean of their source; every platform and lean always shown."""
    fresh = {(row.platform, row.lean): row.fresh_posts for row in rows}
    platforms = [*PLATFORMS, *sorted({row.platform for row in rows} - set(PLATFORMS))]
    fig = go.Figure()
    for lean, colour in LEAN_COLOURS.items():
        fig.add_trace(
            go.Bar(
                name=LEAN_LABELS[lean],
                x=[PLATFORM_LABELS.get(p, p) for p in platforms],
                y=[fresh.get((p, lean), 0) for p in platforms],
                marker_color=colour,
                hovertemplate=f"{LEAN_LABELS[lean]}<br>%{{x}}: %{{y}} posts<extra></extra>",
            )
        )
    fig.update_layout(
        barmode="stack",
        title={"text": f"Posts from the last {limit_h:g} h, by platform and lean"},
        yaxis={"title": "posts", "rangemode": "tozero"},
        height=340,
        **LAYOUT,
    )
    return fig


def age_figure(rows: Sequence[SourceRow], *, limit_h: float) -> go.Figure:
    """Age of each active source's newest post, stale ones in red, against the freshness limit."""
    shown = [row for row in rows if row.active and row.newest_post_age_h is not None]
    fig = go.Figure(
        go.Bar(
            orientation="h",
            y=[f"{row.name} ({PLATFORM_LABELS.get(row.platform, row.platform)})" for row in shown],
            x=[row.newest_post_age_h for row in shown],
            marker_color=["#a61b1b" if row.stale else "#2f855a" for row in shown],
            customdata=[[row.stale or "fresh"] for row in shown],
            hovertemplate="%{y}<br>newest post %{x:.1f} h old<br>%{customdata[0]}<extra></extra>",
        )
    )
    fig.add_vline(x=limit_h, line_dash="dash", line_color="#444", annotation_text=f"limit {limit_h:g} h")
    fig.update_layout(
        title={"text": "Age of each active source's newest post"},
        xaxis={"title": "hours", "rangemode": "tozero"},
        yaxis={"autorange": "reversed"},
        height=max(240, 60 + 24 * len(shown)),
        **LAYOUT,
    )
    return fig
