"""A local transformers sequence-classification model as a scorer.

The model directory holds a multi-label classifier whose ``config.id2label`` names the attributes (our names or
Perspective's, e.g. ``REASONING_EXPERIMENTAL``; see ``attributes.canonical_name``). Scores are sigmoid outputs
(softmax when the config says ``single_label_classification``). Nothing is ever downloaded: loading uses
``local_files_only=True``. The model is loaded when the backend is built: a missing or broken directory raises
``ScorerUnavailable`` there, so a scorer process refuses to start instead of leaving every text unscored.

``quantize=True`` swaps the model's linear layers for torch's dynamic int8 ones: on this machine's CPUs a
MiniLM-sized classifier scores about 1.5 times as many texts per CPU-second, and its probabilities move by up to
about 0.005 (docs/benchmarks.md); validate the quantized model, since it is the one that serves. ONNX Runtime was
measured too and gave nothing over torch, so it is not offered.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from rankers.scoring.attributes import canonical_name
from rankers.scoring.backends.base import ScorerUnavailable, Scores

logger = logging.getLogger(__name__)


class Loaded(NamedTuple):
    tokenizer: Any
    model: Any
    labels: dict[int, str]  # output index -> attribute name
    softmax: bool
    max_length: int


def load_classifier(model_dir: str, max_length: int, quantize: bool = False) -> Loaded:
    """The tokenizer and model in ``model_dir``; ``ScorerUnavailable`` with the reason when they do not load."""
    if not model_dir:
        raise ScorerUnavailable("the transformers scorer needs PRC_SCORER_MODEL_DIR, a local model directory")
    if not Path(model_dir, "config.json").is_file():
        raise ScorerUnavailable(f"PRC_SCORER_MODEL_DIR={model_dir!r} has no config.json: not a model directory")
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(model_dir, local_files_only=True)
    except Exception as exc:
        raise ScorerUnavailable(f"cannot load the scorer model in {model_dir!r}: {exc}") from exc
    model.eval()
    if quantize:
        model = quantize_int8(model)
    labels = {int(i): canonical_name(str(label)) for i, label in model.config.id2label.items()}
    softmax = model.config.problem_type == "single_label_classification"
    # Never ask for more tokens than the model has positions for (a tokenizer may not know its model's limit).
    limits = [max_length, getattr(model.config, "max_position_embeddings", None), tokenizer.model_max_length]
    capped = min(int(n) for n in limits if isinstance(n, int) and n > 0)
    return Loaded(tokenizer, model, labels, softmax, capped)


def quantize_int8(model: Any) -> Any:
    """``model`` with dynamic int8 linear layers (weights int8, activations quantized per batch)."""
    import torch

    with warnings.catch_warnings():  # torch points to torchao for this API; it still works and is what we measured
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


class TransformersBackend:
    def __init__(self, model_dir: str, batch_size: int = 32, max_length: int = 256, quantize: bool = False) -> None:
        self.model_dir = model_dir
        self.batch_size = max(1, batch_size)
        self.name = f"transformers:{model_dir}" + (":int8" if quantize else "")  # int8 scores are not fp32's
        self._loaded = load_classifier(model_dir, max_length, quantize)

    @property
    def labels(self) -> set[str]:
        """The attributes the model scores."""
        return set(self._loaded.labels.values())

    def score(self, texts: Sequence[str], attributes: Sequence[str]) -> list[Scores | None]:
        loaded = self._loaded
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
