"""Plotly figures for the survey dashboard, from the plain rows of ``surveys.dashboard``."""

from __future__ import annotations

from collections import defaultdict
from itertools import accumulate

import plotly.graph_objects as go

from surveys.dashboard import DailyCompletion, WaveArmRow
from surveys.estimators import Estimate


def completion_figure(daily: list[DailyCompletion], totals: list[WaveArmRow]) -> go.Figure:
    """Cumulative share of invited participants who completed, per wave and arm, over time."""
    invited = {(row.wave, row.arm): row.invited for row in totals}
    series: dict[tuple[str, str], list[DailyCompletion]] = defaultdict(list)
    for row in daily:
        series[(row.wave, row.arm)].append(row)
    figure = go.Figure()
    for (wave, arm), rows in sorted(series.items()):
        denominator = invited.get((wave, arm)) or 1
        shares = [100 * total / denominator for total in accumulate(row.completed for row in rows)]
        figure.add_scatter(x=[row.day for row in rows], y=shares, name=f"{wave} · {arm}", mode="lines+markers")
    figure.update_layout(
        title="Completion by wave and arm (% of invited)",
        yaxis={"title": "% completed", "rangemode": "tozero"},
        legend={"orientation": "h", "y": -0.2},
        margin={"l": 50, "r": 20, "t": 50, "b": 40},
        height=420,
    )
    return figure


def effects_figure(estimates: list[Estimate], *, title: str) -> go.Figure:
    """Each estimate with its 95% confidence interval, one row per outcome and sample (a forest plot)."""
    figure = go.Figure()
    for spec in sorted({e.spec for e in estimates}):
        rows = [e for e in estimates if e.spec == spec]
        figure.add_scatter(
            x=[e.estimate for e in rows],
            y=[f"{e.outcome} · {e.sample}" for e in rows],
            error_x={
                "type": "data",
                "symmetric": False,
                "array": [e.ci_high - e.estimate for e in rows],
                "arrayminus": [e.estimate - e.ci_low for e in rows],
            },
            mode="markers",
            name=spec,
        )
    figure.add_vline(x=0, line_dash="dot", line_color="#616e7c")
    figure.update_layout(
        title=title,
        xaxis={"title": "Effect (95% CI)"},
        yaxis={"autorange": "reversed"},
        legend={"orientation": "h", "y": -0.2},
        margin={"l": 220, "r": 20, "t": 50, "b": 40},
        height=max(300, 28 * len(estimates) + 120),
    )
    return figure
