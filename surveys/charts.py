"""Plotly figures for the survey dashboard, from the plain rows of ``surveys.dashboard``."""

from __future__ import annotations

from collections import defaultdict
from itertools import accumulate

import plotly.graph_objects as go

from surveys.dashboard import DailyCompletion, WaveArmRow


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
