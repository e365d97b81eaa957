"""The fast classifiers of candidate posts: civic/political and toxicity. Serving reads their stored scores.

- Civic (``PRC_CIVIC_MODEL_DIR``): either a transformers sequence classifier in a local directory (``config.json``;
  loaded by the scorers' ``TransformersBackend``, never downloaded), or logistic heads saved by
  ``manage.py train_scorer --from-annotations`` (``scorer.json``), applied to the post's stored MiniLM embedding so
  the text is not encoded twice. Its positive label is ``PRC_CIVIC_LABEL``. Unset: civic stays empty.
- Toxicity: ``alt-profanity-check``'s offline linear model (the one the baseline scorer uses).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
from django.conf import settings

from rankers.scoring.attributes import canonical_name
from rankers.scoring.backends.base import ScorerBackend, ScorerUnavailable
from rankers.scoring.backends.embedding import HEADS_FILE, Heads
from rankers.scoring.backends.local_model import TransformersBackend


@dataclass(frozen=True)
class CivicModel:
    """A loaded civic classifier: heads on embeddings, or a transformers model that reads the text."""

    version: str
    label: str
    heads: Heads | None = None
    backend: ScorerBackend | None = None

    def probabilities(self, texts: Sequence[str], embeddings: np.ndarray | None) -> list[float | None]:
        """The civic probability of each text (``embeddings``: their rows, in the same order; heads need them)."""
        if self.heads is not None:
            assert embeddings is not None
            column = self.heads.attributes.index(self.label)
            return [float(p) for p in self.heads.probabilities(embeddings.astype(np.float64))[:, column]]
        assert self.backend is not None
        scored = self.backend.score(texts, [self.label])
        return [None if scores is None else scores.get(self.label) for scores in scored]


def load_civic_model(model_dir: str, label: str) -> CivicModel | None:
    """The civic classifier in ``model_dir`` (None when unset); ``ScorerUnavailable`` when it cannot serve."""
    if not model_dir:
        return None
    wanted = canonical_name(label)
    directory = Path(model_dir)
    if (directory / HEADS_FILE).is_file():
        heads = Heads.from_json((directory / HEADS_FILE).read_text())
        if wanted not in heads.attributes:
            raise ScorerUnavailable(f"{model_dir} has no head for {wanted}; it has {', '.join(heads.attributes)}")
        return CivicModel(version=f"civic=heads:{directory.name}", label=wanted, heads=heads)
    backend = TransformersBackend(
        model_dir, batch_size=settings.PRC_SCORER_BATCH_SIZE, max_length=settings.PRC_SCORER_MAX_LENGTH
    )
    if wanted not in backend.labels:
        known = ", ".join(sorted(backend.labels))
        raise ScorerUnavailable(f"{model_dir} has no label {wanted}; its labels are {known}")
    return CivicModel(version=f"civic=transformers:{directory.name}", label=wanted, backend=backend)


_lock = threading.Lock()
_civic: tuple[tuple[str, str], CivicModel | None] | None = None


def civic_model() -> CivicModel | None:
    """This process's civic classifier as configured, loaded once."""
    global _civic
    key = (settings.PRC_CIVIC_MODEL_DIR, settings.PRC_CIVIC_LABEL)
    with _lock:
        if _civic is None or _civic[0] != key:
            _civic = (key, load_civic_model(*key))
        return _civic[1]


def toxicity(texts: Sequence[str]) -> list[float]:
    """alt-profanity-check's probability that each text is toxic (offensive or profane)."""
    if not texts:
        return []
    from profanity_check import predict_prob

    return [float(p) for p in predict_prob(list(texts))]


def classifier_version(civic: CivicModel | None) -> str:
    """What made a post's ``civic`` and ``toxicity``: a changed model gets the posts classified again."""
    return f"{civic.version if civic else 'civic=none'};toxicity=alt-profanity-check {version('alt-profanity-check')}"
