"""The effects page's forest plots: one per unit, so SDs, minutes and counts never share an axis."""

from __future__ import annotations

from surveys import charts
from surveys.estimators import Estimate


def estimate(spec: str, outcome: str, value: float, sample: str = "pooled") -> Estimate:
    return Estimate(spec, outcome, sample, value, 1.0, 0.5, 100, 10)


def test_survey_minutes_and_counts_estimates_each_get_their_own_plot_and_axis() -> None:
    estimates = [
        estimate("S3", "affective_polarization", -0.05),
        estimate("S1", "facebook.active_minutes", -6.0),
        estimate("S3", "wellbeing", 0.02),
        estimate("S1", "twitter.views", 40.0),
        estimate("S1", "reddit.active_minutes", 2.0, sample="add_news"),
    ]

    figures = dict(charts.effects_figures(estimates))

    assert list(figures) == ["sd", "minutes", "counts"]
    rows = {unit: [y for trace in figure.data for y in trace.y] for unit, figure in figures.items()}
    assert rows == {
        "sd": ["affective_polarization · pooled", "wellbeing · pooled"],
        "minutes": ["facebook.active_minutes · pooled", "reddit.active_minutes · add_news"],
        "counts": ["twitter.views · pooled"],
    }
    axes = {unit: figure.layout.xaxis.title.text for unit, figure in figures.items()}
    assert axes["sd"] == "Effect in control-group standard deviations (95% CI)"
    assert axes["minutes"] == "Effect in active minutes a day (95% CI)"
    assert len(set(axes.values())) == 3


def test_only_the_units_present_are_plotted() -> None:
    assert [unit for unit, _ in charts.effects_figures([estimate("S3", "trust", 0.1)])] == ["sd"]
    assert charts.effects_figures([]) == []
