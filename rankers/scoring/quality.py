"""How good a scorer is against labels: AUC-ROC, Brier score and calibration, per attribute (paper, Table S12).

Pure functions over plain lists. A label is a number in [0, 1] (a human rating, a share of raters, an LLM's
probability); it counts as positive at ``POSITIVE_AT`` (0.5) or above, for every metric here. Also the labelled
CSV that ``validate_scorer`` and ``train_scorer`` read (columns ``text``, ``attribute``, ``label``).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rankers.scoring import attributes as A
from rankers.scoring.backends.base import ScorerBackend, Scores

POSITIVE_AT = 0.5


def is_positive(label: float) -> bool:
    return label >= POSITIVE_AT


def roc_auc(scores: Sequence[float], labels: Sequence[float]) -> float | None:
    """The probability that a random positive outscores a random negative, ties counting half.

    Steps (the Mann-Whitney form of the area under the ROC curve):
    1. Rank all scores from 1 upwards, giving tied scores the mean of the ranks they span.
    2. Add up the positives' ranks and subtract the least possible sum, n_pos (n_pos + 1) / 2.
    3. Divide by n_pos * n_neg. None when either class is empty (AUC is undefined).
    """
    positives = [is_positive(label) for label in labels]
    n_pos = sum(positives)
    n_neg = len(positives) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and scores[order[end + 1]] == scores[order[start]]:
            end += 1
        for k in range(start, end + 1):
            ranks[order[k]] = (start + end) / 2 + 1  # mean of ranks start+1 .. end+1
        start = end + 1
    positive_rank_sum = sum(rank for rank, positive in zip(ranks, positives, strict=True) if positive)
    return (positive_rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def brier_score(scores: Sequence[float], labels: Sequence[float]) -> float:
    """Mean squared distance between score and outcome (0 or 1): 0 is perfect, 0.25 is a constant 0.5."""
    return sum((s - float(is_positive(y))) ** 2 for s, y in zip(scores, labels, strict=True)) / len(scores)


@dataclass(frozen=True)
class CalibrationBin:
    low: float
    high: float
    count: int
    mean_score: float  # what the scorer said, on average, in this bin
    positive_share: float  # how often the label was positive in this bin


def calibration_bins(scores: Sequence[float], labels: Sequence[float], n_bins: int = 10) -> list[CalibrationBin]:
    """Equal-width score bins over [0, 1] (a score of 1 falls in the last); empty bins are left out."""
    members: list[list[int]] = [[] for _ in range(n_bins)]
    for i, score in enumerate(scores):
        members[min(n_bins - 1, int(score * n_bins))].append(i)
    bins = []
    for b, indices in enumerate(members):
        if indices:
            mean_score = sum(scores[i] for i in indices) / len(indices)
            share = sum(is_positive(labels[i]) for i in indices) / len(indices)
            bins.append(CalibrationBin(b / n_bins, (b + 1) / n_bins, len(indices), mean_score, share))
    return bins


def expected_calibration_error(bins: Sequence[CalibrationBin]) -> float:
    """The count-weighted mean gap between mean score and positive share over the bins."""
    total = sum(b.count for b in bins)
    return sum(b.count * abs(b.mean_score - b.positive_share) for b in bins) / total if total else math.nan


@dataclass(frozen=True)
class AttributeQuality:
    attribute: str
    count: int  # labelled texts the scorer scored
    positives: int
    unscored: int  # labelled texts it left unscored (not in the metrics)
    auc: float | None
    brier: float
    ece: float
    bins: list[CalibrationBin]


def attribute_quality(
    attribute: str, scores: Sequence[float | None], labels: Sequence[float], n_bins: int = 10
) -> AttributeQuality:
    """The metrics of one attribute over the texts that got a score; unscored texts are only counted."""
    pairs = [(s, y) for s, y in zip(scores, labels, strict=True) if s is not None]
    scored, kept = [s for s, _ in pairs], [y for _, y in pairs]
    bins = calibration_bins(scored, kept, n_bins)
    return AttributeQuality(
        attribute=attribute,
        count=len(pairs),
        positives=sum(is_positive(y) for y in kept),
        unscored=len(labels) - len(pairs),
        auc=roc_auc(scored, kept),
        brier=brier_score(scored, kept) if pairs else math.nan,
        ece=expected_calibration_error(bins),
        bins=bins,
    )


@dataclass(frozen=True)
class LabelledText:
    text: str
    attribute: str
    label: float


class LabelFileError(ValueError):
    """A labelled CSV that cannot be read; the message names the line."""


def read_labels(path: Path) -> list[LabelledText]:
    """Rows of a CSV with columns ``text``, ``attribute`` (ours, Perspective's or the paper's name), ``label``."""
    rows: list[LabelledText] = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"text", "attribute", "label"} - set(reader.fieldnames or ())
        if missing:
            raise LabelFileError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            rows.append(_labelled(row, f"{path}:{line}"))
    if not rows:
        raise LabelFileError(f"{path}: no labelled rows")
    return rows


def _labelled(row: dict[str, str], where: str) -> LabelledText:
    attribute = A.canonical_name(row["attribute"] or "")
    if attribute not in A.ALL:
        raise LabelFileError(f"{where}: unknown attribute {row['attribute']!r}")
    try:
        label = float(row["label"])
    except (TypeError, ValueError):
        raise LabelFileError(f"{where}: label {row['label']!r} is not a number") from None
    if not 0.0 <= label <= 1.0:
        raise LabelFileError(f"{where}: label {label} is outside [0, 1]")
    if not (row["text"] or "").strip():
        raise LabelFileError(f"{where}: empty text")
    return LabelledText(row["text"], attribute, label)


def in_paper_order(attributes: Iterable[str]) -> list[str]:
    """The distinct ``attributes``, the paper's in its order (``attributes.ALL``), then any others (such as the
    content pipeline's ``CIVIC``) by name."""
    present = set(attributes)
    return [a for a in A.ALL if a in present] + sorted(present - set(A.ALL))


def by_attribute(rows: Iterable[LabelledText]) -> dict[str, list[LabelledText]]:
    """The rows grouped by attribute, in ``in_paper_order``."""
    groups: dict[str, list[LabelledText]] = {}
    for row in rows:
        groups.setdefault(row.attribute, []).append(row)
    return {a: groups[a] for a in in_paper_order(groups)}


def score_rows(backend: ScorerBackend, rows: Sequence[LabelledText], chunk: int = 64) -> list[float | None]:
    """The backend's score of each row's attribute (None: unscored); each distinct text is sent once."""
    texts = list(dict.fromkeys(row.text for row in rows))
    attributes = in_paper_order(row.attribute for row in rows)
    scored: dict[str, Scores | None] = {}
    for start in range(0, len(texts), chunk):
        batch = texts[start : start + chunk]
        scored.update(zip(batch, backend.score(batch, attributes), strict=True))
    return [(scored[row.text] or {}).get(row.attribute) for row in rows]


def validate(
    backend: ScorerBackend, rows: Sequence[LabelledText], n_bins: int = 10, chunk: int = 64
) -> list[AttributeQuality]:
    """Score the labelled rows and measure each attribute, in ``in_paper_order``."""
    scores = score_rows(backend, rows, chunk)
    results = []
    for attribute in in_paper_order(row.attribute for row in rows):
        indices = [i for i, row in enumerate(rows) if row.attribute == attribute]
        labels = [rows[i].label for i in indices]
        results.append(attribute_quality(attribute, [scores[i] for i in indices], labels, n_bins))
    return results


def table_s12(results: Sequence[AttributeQuality], title: str) -> str:
    """The results as a Markdown table in the form of the paper's Table S12, with calibration beside AUC."""

    def number(value: float | None) -> str:
        return "-" if value is None or math.isnan(value) else f"{value:.2f}"

    lines = [
        f"**{title}**",
        "",
        "| Attribute | Definition | AUC-ROC | paper's AUC-ROC | Brier | ECE | n | positives | unscored |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        name, definition = A.PAPER_NAMES.get(r.attribute, r.attribute), A.DEFINITIONS.get(r.attribute, "")
        paper = number(A.PAPER_AUC.get(r.attribute))
        lines.append(
            f"| {name} | {definition} | {number(r.auc)} | {paper} | {number(r.brier)} | {number(r.ece)} "
            f"| {r.count} | {r.positives} | {r.unscored} |"
        )
    return "\n".join(lines)


def calibration_table(result: AttributeQuality) -> str:
    """One attribute's calibration bins: what the scorer said against how often the label was positive."""
    lines = [
        f"Calibration of {A.PAPER_NAMES.get(result.attribute, result.attribute)}:",
        "| scores | n | mean score | positive share |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {b.low:.1f}-{b.high:.1f} | {b.count} | {b.mean_score:.2f} | {b.positive_share:.2f} |" for b in result.bins
    ]
    return "\n".join(lines)
