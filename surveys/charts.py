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


# The units effects are read in, each drawn on its own axis: S3's indexes in control-group standard deviations,
# S1's outcomes raw (the paper: "Platform based outcomes are reported in raw units").
EFFECT_UNITS = {
    "sd": "Effect in control-group standard deviations (95% CI)",
    "minutes": "Effect in active minutes a day (95% CI)",
    "counts": "Effect in views or engagements a day (95% CI)",
}


def effect_unit(estimate: Estimate) -> str:
    """The unit of an estimate (a key of ``EFFECT_UNITS``)."""
    if estimate.spec == "S3":
        return "sd"
    return "minutes" if estimate.outcome.endswith("active_minutes") else "counts"


def effects_figures(estimates: list[Estimate]) -> list[tuple[str, go.Figure]]:
    """One forest plot per unit present, as (unit, figure): estimates in different units never share an axis."""
    units = [unit for unit in EFFECT_UNITS if any(effect_unit(e) == unit for e in estimates)]
    return [(unit, effects_figure([e for e in estimates if effect_unit(e) == unit], unit=unit)) for unit in units]


def effects_figure(estimates: list[Estimate], *, unit: str) -> go.Figure:
    """Each estimate with its 95% confidence interval, one row per outcome and sample (a forest plot), in one unit."""
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
        title=f"{' and '.join(sorted({e.spec for e in estimates}))}: {EFFECT_UNITS[unit].removesuffix(' (95% CI)')}",
        xaxis={"title": EFFECT_UNITS[unit]},
        yaxis={"autorange": "reversed"},
        legend={"orientation": "h", "y": -0.2},
        margin={"l": 220, "r": 20, "t": 50, "b": 40},
        height=max(300, 28 * len(estimates) + 120),
    )
    return figure
