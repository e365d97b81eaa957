"""Scorer backends, chosen by ``settings.PRC_SCORER_BACKEND``.

- ``baseline``: a transparent lexicon and sentiment scorer (a baseline, not a trained classifier);
- ``transformers``: a local multi-label sequence-classification model directory;
- ``embedding``: logistic heads on MiniLM sentence embeddings, as ``manage.py train_scorer`` saves them;
- ``llm``: an OpenAI-compatible chat model asked for JSON scores;
- ``http``: any service speaking Perspective API's ``comments:analyze`` format.

Backends are imported lazily so that choosing one never loads the others' heavy dependencies. A backend that
cannot work with its settings (a missing or unloadable model directory) raises ``ScorerUnavailable`` here, at
build time, with a message that says what to fix.
"""

from __future__ import annotations

from typing import Any

from rankers.scoring.backends.base import ScorerBackend, ScorerUnavailable, Scores

BACKEND_NAMES = ("baseline", "transformers", "embedding", "llm", "http")

# What researchers see on the delivery page about the scores behind the bridging arms.
DESCRIPTIONS = {
    "baseline": (
        "Baseline scorer: word lists, VADER sentiment and a profanity model. A transparent stand-in for "
        "demos and tests, not the classifiers the paper's arms used; configure a real backend for a study."
    ),
    "transformers": "Local transformers classifier (PRC_SCORER_MODEL_DIR).",
    "embedding": "Classifier on MiniLM sentence embeddings, trained with train_scorer (PRC_SCORER_MODEL_DIR).",
    "llm": "LLM annotation through an OpenAI-compatible server (OPENAI_BASE_URL, PRC_LLM_MODEL).",
    "http": "Perspective-compatible HTTP scorer (PRC_SCORER_HTTP_URL).",
}


def describe_backend(name: str) -> tuple[str, bool]:
    """(description, is_baseline) of a backend name, for the researcher UI."""
    return DESCRIPTIONS.get(name, f"Unknown scorer backend {name!r}."), name == "baseline"


def build_backend(name: str, settings: Any) -> ScorerBackend:
    """Build the backend called ``name`` from Django settings (or any object with the same attributes)."""
    if name == "baseline":
        from rankers.scoring.backends.baseline import BaselineBackend

        return BaselineBackend()
    if name == "transformers":
        from rankers.scoring.backends.local_model import TransformersBackend

        return TransformersBackend(
            model_dir=settings.PRC_SCORER_MODEL_DIR,
            batch_size=settings.PRC_SCORER_BATCH_SIZE,
            max_length=settings.PRC_SCORER_MAX_LENGTH,
            quantize=settings.PRC_SCORER_QUANTIZE,
            runtime=settings.PRC_SCORER_RUNTIME,
            threads=settings.PRC_SCORER_THREADS,
        )
    if name == "embedding":
        from rankers.scoring.backends.embedding import EmbeddingBackend

        return EmbeddingBackend(model_dir=settings.PRC_SCORER_MODEL_DIR, batch_size=settings.PRC_SCORER_BATCH_SIZE)
    if name == "llm":
        from rankers.scoring.backends.llm import LLMBackend
        from rankers.scoring.usage import Prices, record_usage

        prices = Prices(settings.PRC_LLM_PRICE_PROMPT_PER_1K, settings.PRC_LLM_PRICE_COMPLETION_PER_1K)
        return LLMBackend(
            base_url=settings.OPENAI_BASE_URL or None,
            api_key=settings.OPENAI_API_KEY or "not-needed",
            model=settings.PRC_LLM_MODEL,
            timeout_s=settings.PRC_SCORER_TIMEOUT_S,
            concurrency=settings.PRC_SCORER_CONCURRENCY,
            deadline_s=settings.PRC_SCORER_DEADLINE_S,
            prices=prices,
            on_usage=lambda backend, usage: record_usage(backend=backend, usage=usage),
        )
    if name == "http":
        from rankers.scoring.backends.perspective_http import PerspectiveHTTPBackend

        return PerspectiveHTTPBackend(
            url=settings.PRC_SCORER_HTTP_URL,
            timeout_s=settings.PRC_SCORER_TIMEOUT_S,
            concurrency=settings.PRC_SCORER_CONCURRENCY,
            deadline_s=settings.PRC_SCORER_DEADLINE_S,
            perspective_names=settings.PRC_SCORER_HTTP_PERSPECTIVE_NAMES,
        )
    raise ScorerUnavailable(f"unknown scorer backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")


__all__ = [
    "BACKEND_NAMES",
    "DESCRIPTIONS",
    "ScorerBackend",
    "ScorerUnavailable",
    "Scores",
    "build_backend",
    "describe_backend",
]
