"""The preregistered outcome indexes of supplementary section 1.4 (pure functions, no ORM).

1. ``item_scores`` codes one response's answers as numbers, one per scored item, oriented so that a
   higher number means more of what the item measures (e.g. trust: 100 minus "can't be too careful").
2. ``standardize`` turns every item into a z-score against the control group ("we standardize scores
   for each statement or question, and add them up"), combines the items of each index as section 1.4
   says, and standardizes each index against the control group again, so that effects read in control
   standard deviations ("effects are measured in standard deviations of the control group", 1.2).
3. ``raw_indexes`` applies the same combination to unstandardized items: what a single response
   shows on its own (stored with the response for inspection; analyses use ``standardize``).

An index whose items are all missing is missing; an index with some items missing averages the items
it has (scaled to the full count), so a skipped platform question does not shrink a score towards 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

PLATFORMS = ("facebook", "x", "reddit")
WHO5_ITEMS = ("cheerful", "calm", "active", "rested", "interest")
NEELY_POSITIVE = tuple(f"{kind}_{p}" for kind in ("meaningful", "learned") for p in PLATFORMS)
NEELY_NEGATIVE = tuple(f"{kind}_{p}" for kind in ("negative", "bftw") for p in PLATFORMS)
YES_NO_UNSURE = {"yes": 1.0, "no": 0.0, "not_sure": 0.5}

Scores = dict[str, float]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None or value == "na":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def knowledge_score(answers: Mapping[str, str], key: Sequence[Mapping[str, Any]]) -> float | None:
    """Share of headlines judged correctly (true as true, false as false); "unsure" counts as wrong."""
    judged = [item for item in key if answers.get(item["key"]) in ("true", "false", "unsure")]
    if not judged:
        return None
    right = sum(1 for item in judged if answers[item["key"]] == ("true" if item["true"] else "false"))
    return right / len(key)


def item_scores(answers: Mapping[str, Any], headline_key: Sequence[Mapping[str, Any]] = ()) -> Scores:
    """Numeric, consistently oriented codes of every scored item this response answered."""
    scores: Scores = {}

    def put(name: str, value: float | None) -> None:
        if value is not None:
            scores[name] = value

    wellbeing = answers.get("wellbeing") or {}
    for item in WHO5_ITEMS:
        put(f"who5_{item}", _number(wellbeing.get(item)))
    for key in ("ft_in", "ft_out", "sd_in", "sd_out", "kalmoe_mason_1", "kalmoe_mason_3", "meta_spv_1", "meta_spv_2"):
        put(key, _number(answers.get(key)))
    trust = _number(answers.get("gss_trust"))
    put("trust", None if trust is None else 100 - trust)  # the scale runs from trusting (0) to careful (100)
    empathy = answers.get("empathy") or {}
    difficult = _number(empathy.get("difficult"))
    put("empathy_difficult", None if difficult is None else 8 - difficult)  # reverse-keyed on 1..7
    put("empathy_important", _number(empathy.get("important")))
    for key in NEELY_POSITIVE:
        put(key, YES_NO_UNSURE.get(answers.get(key, "")))
    for key in NEELY_NEGATIVE:
        value = YES_NO_UNSURE.get(answers.get(key, ""))
        put(key, None if value is None else 1 - value)
    if headline_key:
        put("knowledge", knowledge_score(answers.get("headlines") or {}, headline_key))
    return scores


def _mean_scaled(values: Sequence[float | None], weights: Sequence[float] | None = None) -> float | None:
    """Sum of the items, the missing ones replaced by the mean of the present ones (None if none present)."""
    weights = weights or [1.0] * len(values)
    present = [(v, w) for v, w in zip(values, weights, strict=True) if v is not None]
    if not present:
        return None
    return sum(v * w for v, w in present) * len(values) / len(present)


def _difference(inparty: float | None, outparty: float | None) -> float | None:
    if inparty is None or outparty is None:
        return None
    return (inparty - outparty) / 2  # "the average of the inparty and the negative of outparty scores"


def _polarization(items: Mapping[str, float]) -> float | None:
    thermometer = _difference(items.get("ft_in"), items.get("ft_out"))
    friends = _difference(items.get("sd_in"), items.get("sd_out"))
    present = [d for d in (thermometer, friends) if d is not None]
    return sum(present) / len(present) if present else None  # "the average of those two difference scores"


def _sum_of(*names: str) -> Callable[[Mapping[str, float]], float | None]:
    return lambda items: _mean_scaled([items.get(name) for name in names])


# Index name -> how its items combine (section 1.4). Higher = more of the named outcome.
INDEXES: dict[str, Callable[[Mapping[str, float]], float | None]] = {
    "wellbeing": _sum_of(*(f"who5_{item}" for item in WHO5_ITEMS)),
    "violence_support": _sum_of("kalmoe_mason_1", "kalmoe_mason_3"),
    "meta_perceptions": _sum_of("meta_spv_1", "meta_spv_2"),
    "affective_polarization": _polarization,
    "empathy": _sum_of("empathy_difficult", "empathy_important"),
    "knowledge": _sum_of("knowledge"),
    "neely": _sum_of(*NEELY_POSITIVE, *NEELY_NEGATIVE),
    "trust": _sum_of("trust"),
    # As preregistered (section 1.1.1): general trust plus comfort with outparty friends.
    "trust_index": _sum_of("trust", "sd_out"),
}


def raw_indexes(items: Mapping[str, float]) -> Scores:
    """Every index of one response from its unstandardized items (missing indexes are left out)."""
    values = {name: combine(items) for name, combine in INDEXES.items()}
    return {name: value for name, value in values.items() if value is not None}


def _mean_sd(values: Sequence[float]) -> tuple[float, float] | None:
    """Mean and sample standard deviation; None with fewer than two values or no spread."""
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return (mean, sd) if sd > 0 else None


def _z(rows: Sequence[Mapping[str, float]], reference: Sequence[Mapping[str, float]], name: str) -> list[float | None]:
    stats = _mean_sd([row[name] for row in reference if name in row])
    if stats is None:
        return [None] * len(rows)
    mean, sd = stats
    return [(row[name] - mean) / sd if name in row else None for row in rows]


def standardize(rows: Sequence[Mapping[str, float]], is_control: Sequence[bool]) -> list[Scores]:
    """Standardized indexes for every row (a response's ``item_scores``), against the control rows.

    An item or index with fewer than two control values, or none that differ, cannot be
    standardized and is left out of every row.
    """
    reference = [row for row, control in zip(rows, is_control, strict=True) if control]
    item_names = sorted({name for row in rows for name in row})
    z_columns = {name: _z(rows, reference, name) for name in item_names}
    z_rows = [_row(z_columns, i) for i in range(len(rows))]
    combined = [raw_indexes(row) for row in z_rows]
    z_index = {
        name: _z(combined, [c for c, ctl in zip(combined, is_control, strict=True) if ctl], name) for name in INDEXES
    }
    return [_row(z_index, i) for i in range(len(rows))]


def _row(columns: Mapping[str, Sequence[float | None]], i: int) -> Scores:
    row: Scores = {}
    for name, column in columns.items():
        value = column[i]
        if value is not None:
            row[name] = value
    return row
