"""Distil labels into logistic heads on sentence embeddings (``manage.py train_scorer``).

Labels may be human ratings (0 or 1, or a share of raters) or an LLM's probabilities: each labelled text counts
as a positive example with weight ``label`` and a negative one with weight ``1 - label``, so a logistic head fits
soft labels by their cross-entropy rather than a rounded copy of them.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from rankers.scoring.backends.embedding import ENCODER_DIR, HEADS_FILE, Heads, embed
from rankers.scoring.quality import LabelledText, by_attribute, is_positive


class TrainingError(ValueError):
    """Labels that cannot train a head (one class only); the message names the attribute."""


def fit_head(embeddings: np.ndarray, labels: Sequence[float], c: float = 1.0) -> tuple[list[float], float]:
    """Weights and bias of a logistic regression fitted to soft ``labels`` of the ``embeddings`` rows."""
    soft = np.asarray(labels, dtype=np.float64)
    features = np.vstack([embeddings, embeddings])
    targets = np.concatenate([np.ones(len(soft)), np.zeros(len(soft))])
    weights = np.concatenate([soft, 1.0 - soft])
    keep = weights > 0
    if len(set(targets[keep])) < 2:
        raise TrainingError("every label is the same")
    model = LogisticRegression(C=c, max_iter=2000)
    model.fit(features[keep], targets[keep], sample_weight=weights[keep])
    return [float(w) for w in model.coef_[0]], float(model.intercept_[0])


def train_heads(rows: Sequence[LabelledText], encoder: Any, c: float = 1.0, batch_size: int = 32) -> Heads:
    """One head per attribute in ``rows``; each distinct text is embedded once."""
    texts = list(dict.fromkeys(row.text for row in rows))
    vectors = dict(zip(texts, embed(encoder, texts, batch_size), strict=True))
    attributes, weights, bias = [], [], []
    for attribute, group in by_attribute(rows).items():
        labels = [row.label for row in group]
        if len({is_positive(label) for label in labels}) < 2:
            raise TrainingError(f"{attribute}: every label is on one side of 0.5; it needs positive and negative texts")
        w, b = fit_head(np.vstack([vectors[row.text] for row in group]), labels, c)
        attributes.append(attribute)
        weights.append(w)
        bias.append(b)
    counts = {a: len(g) for a, g in by_attribute(rows).items()}
    return Heads(attributes, weights, bias, trained={"texts": len(texts), "labels_per_attribute": counts, "C": c})


def split_by_text(
    rows: Sequence[LabelledText], holdout: float, seed: int = 0
) -> tuple[list[LabelledText], list[LabelledText]]:
    """(training, held-out) rows; all labels of one text fall on the same side, so no text is seen twice."""
    texts = sorted({row.text for row in rows})
    random.Random(seed).shuffle(texts)
    held = set(texts[: round(holdout * len(texts))])
    return [r for r in rows if r.text not in held], [r for r in rows if r.text in held]


def save_scorer(directory: Path, heads: Heads, encoder_dir: Path) -> None:
    """Write a model directory the ``embedding`` backend serves: the heads and a copy of the encoder."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copytree(encoder_dir, directory / ENCODER_DIR, dirs_exist_ok=True)
    (directory / HEADS_FILE).write_text(heads.to_json())
