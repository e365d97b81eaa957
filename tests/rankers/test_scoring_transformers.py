"""The transformers backend on a tiny BERT built and saved here, loaded through the real loader."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rankers.plugins.base import SlateItem
from rankers.scoring import attributes as A
from rankers.scoring import configure, identity, score_items
from rankers.scoring.backends import ScorerUnavailable, build_backend
from rankers.scoring.backends.local_model import TransformersBackend
from tests.rankers.tiny_models import save_tiny_bert

LABELS = ["REASONING_EXPERIMENTAL", "TOXICITY", "INSULT", "Stereotyping"]
WORDS = ["you", "are", "a", "stupid", "idiot", "i", "because", "thank"]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-scorer"), LABELS, WORDS)


@pytest.fixture(autouse=True)
def fresh_scorer() -> Iterator[None]:
    configure()
    yield
    configure()


def test_transformers_backend_scores_every_labelled_attribute_in_the_unit_interval(
    settings: object, tiny_model_dir: Path
) -> None:
    settings.PRC_SCORER_BACKEND = "transformers"  # type: ignore[attr-defined]
    settings.PRC_SCORER_MODEL_DIR = str(tiny_model_dir)  # type: ignore[attr-defined]
    settings.PRC_SCORER_BATCH_SIZE = 2  # type: ignore[attr-defined]
    long_text = "because " * 1000  # longer than the model's 64 positions: must be truncated
    items = [SlateItem(str(i), text) for i, text in enumerate(["you are a stupid idiot", "i thank you", long_text])]

    scores = score_items(items, [A.REASONING, A.TOXICITY, A.INSULT, A.GENERALIZATION, A.THREAT])

    assert set(scores) == {"0", "1", "2"}
    for item_scores in scores.values():
        # THREAT is not one of the model's labels: left out, not invented.
        assert set(item_scores) == {A.REASONING, A.TOXICITY, A.INSULT, A.GENERALIZATION}
        assert all(0.0 <= value <= 1.0 for value in item_scores.values())


def test_transformers_backend_gives_the_same_scores_batched_or_alone(tiny_model_dir: Path) -> None:
    texts = ["you are a stupid idiot", "i thank you because", "a"]
    batched = TransformersBackend(str(tiny_model_dir), batch_size=3).score(texts, [A.TOXICITY])
    alone = TransformersBackend(str(tiny_model_dir), batch_size=1).score(texts, [A.TOXICITY])

    for b, a in zip(batched, alone, strict=True):
        assert b is not None
        assert a is not None
        assert b[A.TOXICITY] == pytest.approx(a[A.TOXICITY], abs=1e-5)


def test_a_calls_scores_come_back_in_the_order_of_its_texts_though_batched_by_length(tmp_path: Path) -> None:
    texts = ["you are a stupid idiot because i", "a", "i thank you because", "you are a", "thank you"]
    spread = save_tiny_bert(tmp_path, LABELS, WORDS, initializer_range=0.5)  # scores that differ with the length
    backend = TransformersBackend(str(spread), batch_size=2)

    together = backend.score(texts, [A.TOXICITY, A.INSULT])
    one_by_one = [backend.score([text], [A.TOXICITY, A.INSULT])[0] for text in texts]

    assert together == [pytest.approx(alone, abs=1e-5) for alone in one_by_one]
    assert len({tuple(s.values()) for s in together if s is not None}) == len(texts)  # the texts score differently


@pytest.mark.parametrize(
    ("model_dir", "message"),
    [("", "needs PRC_SCORER_MODEL_DIR"), ("/nonexistent/scorer-model", "has no config.json: not a model directory")],
)
def test_a_missing_model_directory_stops_the_backend_from_being_built(
    settings: object, model_dir: str, message: str
) -> None:
    settings.PRC_SCORER_MODEL_DIR = model_dir  # type: ignore[attr-defined]

    with pytest.raises(ScorerUnavailable, match=message):
        build_backend("transformers", settings)


def test_a_directory_whose_model_does_not_load_stops_the_backend_from_being_built(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")

    with pytest.raises(ScorerUnavailable, match=f"cannot load the scorer model in '{tmp_path}'"):
        TransformersBackend(str(tmp_path))


def test_a_scorer_without_its_model_leaves_the_slate_unscored_instead_of_failing_it(settings: object) -> None:
    settings.PRC_SCORER_BACKEND = "transformers"  # type: ignore[attr-defined]
    settings.PRC_SCORER_MODEL_DIR = "/nonexistent/scorer-model"  # type: ignore[attr-defined]

    assert score_items([SlateItem("a", "text")], [A.TOXICITY]) == {}


def test_the_int8_quantized_model_scores_close_to_the_full_one_under_its_own_name(tiny_model_dir: Path) -> None:
    texts = ["you are a stupid idiot", "i thank you because"]
    full = TransformersBackend(str(tiny_model_dir))
    int8 = TransformersBackend(str(tiny_model_dir), quantize=True)

    quantized_layers = [m for m in int8._loaded.model.modules() if "quantized" in type(m).__module__]
    assert quantized_layers, "no linear layer was swapped for an int8 one"
    assert int8.name == full.name + ":int8"  # never served from the other's cache entries
    for f, q in zip(full.score(texts, [A.TOXICITY]), int8.score(texts, [A.TOXICITY]), strict=True):
        assert f is not None
        assert q is not None
        assert q[A.TOXICITY] == pytest.approx(f[A.TOXICITY], abs=0.02)


def test_the_int8_model_and_the_full_model_never_share_a_scorer_identity(settings: Any) -> None:
    settings.PRC_SCORER_BACKEND = "transformers"
    settings.PRC_SCORER_MODEL_DIR = "/models/minilm-bridging"
    settings.PRC_SCORER_QUANTIZE = False
    full = identity()
    settings.PRC_SCORER_QUANTIZE = True
    assert identity() == "transformers:/models/minilm-bridging:int8"
    assert full == "transformers:/models/minilm-bridging"
