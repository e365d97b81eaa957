"""A local transformers sequence-classification model as a scorer.

The model directory holds a multi-label classifier whose ``config.id2label`` names the attributes (our names or
Perspective's, e.g. ``REASONING_EXPERIMENTAL``; see ``attributes.canonical_name``). Scores are sigmoid outputs
(softmax when the config says ``single_label_classification``). Nothing is ever downloaded: loading uses
``local_files_only=True``. The model is loaded when the backend is built: a missing or broken directory raises
``ScorerUnavailable`` there, so a scorer process refuses to start instead of leaving every text unscored.

``runtime="onnxruntime"`` runs the graph that ``manage.py export_scorer_onnx`` exported into the model directory
(``onnx_model``) instead of torch. ``quantize=True`` runs int8 linear layers: torch's dynamic int8 under torch
(about 1.4 times the texts per CPU-second of fp32 on this machine's CPUs), ONNX Runtime's dynamic int8 export under
onnxruntime (about 2.3 times); probabilities move by up to about 0.007 (docs/benchmarks.md). Validate the model
that serves (``validate_scorer``): each runtime and precision scores under its own name.

Each call's texts are batched shortest first, so that a batch is padded to texts of about its own length.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from rankers.scoring.attributes import canonical_name
from rankers.scoring.backends.base import ScorerUnavailable, Scores

logger = logging.getLogger(__name__)


RUNTIMES = ("torch", "onnxruntime")


class Loaded(NamedTuple):
    tokenizer: Any
    model: Any  # the torch model; None under onnxruntime
    logits: Callable[[dict[str, Any]], Any]  # tokenizer output (numpy) -> logits (numpy)
    labels: dict[int, str]  # output index -> attribute name
    softmax: bool
    max_length: int


def load_classifier(
    model_dir: str, max_length: int, quantize: bool = False, runtime: str = "torch", threads: int = 1
) -> Loaded:
    """The tokenizer and model in ``model_dir``; ``ScorerUnavailable`` with the reason when they do not load."""
    if runtime not in RUNTIMES:
        raise ScorerUnavailable(f"PRC_SCORER_RUNTIME={runtime!r}: choose one of {', '.join(RUNTIMES)}")
    if not model_dir:
        raise ScorerUnavailable("the transformers scorer needs PRC_SCORER_MODEL_DIR, a local model directory")
    if not Path(model_dir, "config.json").is_file():
        raise ScorerUnavailable(f"PRC_SCORER_MODEL_DIR={model_dir!r} has no config.json: not a model directory")
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    model = None
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        if runtime == "torch":
            model = AutoModelForSequenceClassification.from_pretrained(model_dir, local_files_only=True)
            config = model.config
        else:
            config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
    except Exception as exc:
        raise ScorerUnavailable(f"cannot load the scorer model in {model_dir!r}: {exc}") from exc
    if model is not None:
        model.eval()
        if quantize:
            model = quantize_int8(model)
        logits = torch_runner(model)
    else:
        from rankers.scoring.backends.onnx_model import load_runner

        logits = load_runner(model_dir, quantize, threads)
    labels = {int(i): canonical_name(str(label)) for i, label in config.id2label.items()}
    softmax = config.problem_type == "single_label_classification"
    # Never ask for more tokens than the model has positions for (a tokenizer may not know its model's limit).
    limits = [max_length, getattr(config, "max_position_embeddings", None), tokenizer.model_max_length]
    capped = min(int(n) for n in limits if isinstance(n, int) and n > 0)
    return Loaded(tokenizer, model, logits, labels, softmax, capped)


def torch_runner(model: Any) -> Callable[[dict[str, Any]], Any]:
    import torch

    def run(encoded: dict[str, Any]) -> Any:
        with torch.inference_mode():
            return model(**{name: torch.from_numpy(array) for name, array in encoded.items()}).logits.numpy()

    return run


def quantize_int8(model: Any) -> Any:
    """``model`` with dynamic int8 linear layers (weights int8, activations quantized per batch)."""
    import torch

    with warnings.catch_warnings():  # torch points to torchao for this API; it still works and is what we measured
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


class TransformersBackend:
    def __init__(
        self,
        model_dir: str,
        batch_size: int = 32,
        max_length: int = 256,
        quantize: bool = False,
        runtime: str = "torch",
        threads: int = 1,
    ) -> None:
        self.model_dir = model_dir
        self.batch_size = max(1, batch_size)
        # Scores of another runtime or precision are not fp32 torch's: they never share cache entries.
        self.name = f"transformers:{model_dir}" + (":onnx" if runtime == "onnxruntime" else "")
        self.name += ":int8" if quantize else ""
        self._loaded = load_classifier(model_dir, max_length, quantize, runtime, threads)

    @property
    def labels(self) -> set[str]:
        """The attributes the model scores."""
        return set(self._loaded.labels.values())

    def score(self, texts: Sequence[str], attributes: Sequence[str]) -> list[Scores | None]:
        loaded = self._loaded
        wanted = {i: name for i, name in loaded.labels.items() if name in set(attributes)}
        results: list[Scores | None] = [None] * len(texts)
        # Shortest first: a batch is padded to its longest text, so texts of like lengths go together.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            indices = order[start : start + self.batch_size]
            try:
                probs = self._probabilities(loaded, [texts[i] for i in indices])
            except Exception:
                logger.warning("scorer model failed on a batch of %d texts", len(indices), exc_info=True)
                continue
            for i, row in zip(indices, probs, strict=True):
                results[i] = {name: float(row[j]) for j, name in wanted.items()}
        return results

    @staticmethod
    def _probabilities(loaded: Loaded, batch: list[str]) -> list[list[float]]:
        encoded = loaded.tokenizer(
            batch, padding=True, truncation=True, max_length=loaded.max_length, return_tensors="np"
        )
        return [list(row) for row in probabilities(loaded.logits(dict(encoded)), loaded.softmax).tolist()]


def probabilities(logits: Any, softmax: bool) -> np.ndarray:
    """A classifier's (texts x labels) logits as probabilities: softmax over labels, or a sigmoid for each."""
    values = np.asarray(logits, dtype=np.float64)
    if softmax:
        exp = np.exp(values - values.max(axis=-1, keepdims=True))
        return np.asarray(exp / exp.sum(axis=-1, keepdims=True))
    return np.asarray(1.0 / (1.0 + np.exp(-values)))
