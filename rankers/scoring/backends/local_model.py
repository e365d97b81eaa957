"""A local transformers sequence-classification model as a scorer.

The model directory holds a multi-label classifier whose ``config.id2label`` names the attributes (our names or
Perspective's, e.g. ``REASONING_EXPERIMENTAL``; see ``attributes.canonical_name``). Scores are sigmoid outputs
(softmax when the config says ``single_label_classification``). Nothing is ever downloaded: loading uses
``local_files_only=True``. A missing or broken directory leaves every text unscored (logged once per minute).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

from rankers.scoring.attributes import canonical_name
from rankers.scoring.backends.base import Scores

logger = logging.getLogger(__name__)

RETRY_LOAD_AFTER_S = 60.0


class Loaded(NamedTuple):
    tokenizer: Any
    model: Any
    labels: dict[int, str]  # output index -> attribute name
    softmax: bool
    max_length: int


class TransformersBackend:
    def __init__(self, model_dir: str, batch_size: int = 32, max_length: int = 256) -> None:
        self.model_dir = model_dir
        self.batch_size = max(1, batch_size)
        self.max_length = max_length
        self.name = f"transformers:{model_dir}"
        self._lock = threading.Lock()
        self._loaded: Loaded | None = None
        self._failed_at: float | None = None

    def _load(self) -> Loaded | None:
        with self._lock:
            if self._loaded is not None:
                return self._loaded
            if self._failed_at is not None and time.monotonic() - self._failed_at < RETRY_LOAD_AFTER_S:
                return None
            try:
                self._loaded = self._load_from_disk()
            except Exception:
                self._failed_at = time.monotonic()
                logger.warning("cannot load scorer model from %r; texts stay unscored", self.model_dir, exc_info=True)
            return self._loaded

    def _load_from_disk(self) -> Loaded:
        if not self.model_dir:
            raise FileNotFoundError("PRC_SCORER_MODEL_DIR is not set")
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(self.model_dir, local_files_only=True)
        model.eval()
        labels = {int(i): canonical_name(str(label)) for i, label in model.config.id2label.items()}
        softmax = model.config.problem_type == "single_label_classification"
        # Never ask for more tokens than the model has positions for (a tokenizer may not know its model's limit).
        limits = [self.max_length, getattr(model.config, "max_position_embeddings", None), tokenizer.model_max_length]
        max_length = min(int(n) for n in limits if isinstance(n, int) and n > 0)
        return Loaded(tokenizer, model, labels, softmax, max_length)

    def score(self, texts: Sequence[str], attributes: Sequence[str]) -> list[Scores | None]:
        loaded = self._load()
        if loaded is None:
            return [None] * len(texts)
        wanted = {i: name for i, name in loaded.labels.items() if name in set(attributes)}
        results: list[Scores | None] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            try:
                probs = self._probabilities(loaded, batch)
            except Exception:
                logger.warning("scorer model failed on a batch of %d texts", len(batch), exc_info=True)
                results.extend([None] * len(batch))
                continue
            results.extend({name: float(row[i]) for i, name in wanted.items()} for row in probs)
        return results

    @staticmethod
    def _probabilities(loaded: Loaded, batch: list[str]) -> list[list[float]]:
        import torch

        encoded = loaded.tokenizer(
            batch, padding=True, truncation=True, max_length=loaded.max_length, return_tensors="pt"
        )
        with torch.no_grad():
            logits = loaded.model(**encoded).logits
        probs = torch.softmax(logits, dim=-1) if loaded.softmax else torch.sigmoid(logits)
        return [list(row) for row in probs.tolist()]
