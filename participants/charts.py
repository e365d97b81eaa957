"""Plotly figures for the participants dashboards, built from the plain rows of ``dashboard``."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from itertools import accumulate

import plotly.graph_objects as go

from participants.balance import RetentionPoint
from participants.dashboard import DailyRow


def days_between(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]


def enrolment_figure(rows: list[DailyRow], start: dt.date, end: dt.date) -> go.Figure:
    """Stacked daily enrolments per arm, with the cumulative total on a second axis."""
    days = days_between(start, end)
    per_arm: dict[str, dict[dt.date, int]] = defaultdict(dict)
    for row in rows:
        per_arm[row.arm][row.day] = row.enrolled
    figure = go.Figure()
    for arm, counts in per_arm.items():
        figure.add_bar(x=days, y=[counts.get(day, 0) for day in days], name=arm)
    totals = [sum(counts.get(day, 0) for counts in per_arm.values()) for day in days]
    figure.add_scatter(x=days, y=list(accumulate(totals)), name="Cumulative", mode="lines", yaxis="y2")
    figure.update_layout(
        barmode="stack",
        title="Daily enrolment (extension installed)",
        yaxis={"title": "Participants per day", "rangemode": "tozero"},
        yaxis2={"title": "Cumulative", "overlaying": "y", "side": "right", "rangemode": "tozero"},
        legend={"orientation": "h", "y": -0.2},
        margin={"l": 50, "r": 50, "t": 50, "b": 40},
        height=420,
    )
    return figure


def figure_html(figure: go.Figure, div_id: str) -> str:
    """The figure as a <div> and its script; the page loads plotly.js itself, once."""
    html: str = figure.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config={"responsive": True})
    return html


def retention_figure(points: list[RetentionPoint]) -> go.Figure:
    """Figure S11: per arm, the share of everyone ever included who is still in the study, by day."""
    figure = go.Figure()
    for arm in sorted({p.arm for p in points}):
        rows = [p for p in points if p.arm == arm]
        figure.add_scatter(x=[p.day for p in rows], y=[100 * p.share for p in rows], name=arm, mode="lines")
    figure.update_layout(
        title="Share of each arm still in the study (% of everyone ever included)",
        yaxis={"title": "% of ever included", "rangemode": "tozero"},
        legend={"orientation": "h", "y": -0.2},
        margin={"l": 50, "r": 20, "t": 50, "b": 40},
        height=420,
    )
    return figure
