"""``manage.py train_scorer``: labels distilled into heads on the installed MiniLM, served by the embedding backend."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from rankers.plugins.base import SlateItem
from rankers.scoring import attributes as A
from rankers.scoring import configure, score_items
from rankers.scoring.backends import ScorerUnavailable, build_backend
from rankers.scoring.training import fit_head

INSULTS = [
    "You are a pathetic idiot.", "Shut up, you brainless moron.", "What a stupid clown you are.",
    "Only a worthless fool would post this garbage.", "You are dumb and ignorant.", "Nobody asked you, loser.",
    "Your opinion is trash, imbecile.", "You absolute moron, read a book.", "Go away, you pathetic troll.",
    "You idiots ruin every thread.", "Are you really this dumb?", "Such a clueless fool.",
]  # fmt: skip
KIND = [
    "Thank you for sharing this lovely photo.", "I hope your garden grows well this spring.",
    "Congratulations on the new job!", "The library opens at nine on Saturdays.", "What a beautiful sunset tonight.",
    "I appreciate your thoughtful answer.", "Our team won the match yesterday.", "The recipe needs two cups of flour.",
    "Have a great weekend, everyone.", "The museum has a new exhibit on whales.", "Welcome to the neighborhood!",
    "This bread recipe turned out great.",
]  # fmt: skip


@pytest.fixture(scope="module")
def labels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("labels") / "labels.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "attribute", "label"])
        writer.writerows([text, "Insult", 1] for text in INSULTS)
        writer.writerows([text, "Insult", 0.1] for text in KIND)  # soft labels, as an LLM gives them
    return path


@pytest.fixture(scope="module")
def trained(labels: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("scorer") / "insult-v1"
    output = StringIO()
    call_command(
        "train_scorer", "--csv", str(labels), "--out", str(out), "--holdout", "0.25", "--c", "10", stdout=output
    )
    return out, output.getvalue()


@pytest.fixture(autouse=True)
def fresh_scorer() -> Iterator[None]:
    configure()
    yield
    configure()


def test_training_saves_a_scorer_and_validates_it_on_texts_it_never_saw(trained: tuple[Path, str]) -> None:
    out, output = trained

    assert (out / "scorer.json").is_file()
    assert (out / "encoder" / "model.safetensors").is_file()  # a copy: the directory serves on its own
    assert f"Saved a scorer of INSULT to {out} (18 labels)." in output
    assert "Held-out validation (6 texts never trained on)" in output
    assert "| Insult | Insulting, inflammatory" in output


def test_the_embedding_backend_serves_the_trained_scorer(settings: object, trained: tuple[Path, str]) -> None:
    out, _ = trained
    settings.PRC_SCORER_BACKEND = "embedding"  # type: ignore[attr-defined]
    settings.PRC_SCORER_MODEL_DIR = str(out)  # type: ignore[attr-defined]
    items = [SlateItem("rude", "You are a total moron, shut up."), SlateItem("kind", "Thanks, have a lovely day!")]

    scores = score_items(items, [A.INSULT, A.REASONING])

    assert set(scores["rude"]) == {A.INSULT}  # no head for reasoning: left out, not invented
    assert scores["rude"][A.INSULT] > 0.5 > scores["kind"][A.INSULT]


@pytest.mark.parametrize("model_dir", ["", "/nonexistent/scorer"])
def test_an_embedding_scorer_without_its_directory_is_not_built(settings: object, model_dir: str) -> None:
    settings.PRC_SCORER_MODEL_DIR = model_dir  # type: ignore[attr-defined]

    with pytest.raises(ScorerUnavailable, match="PRC_SCORER_MODEL_DIR"):
        build_backend("embedding", settings)


def test_training_refuses_an_attribute_with_one_class_only(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("text,attribute,label\na,Insult,1\nb,Insult,1\nc,Insult,0.9\n")

    with pytest.raises(
        CommandError, match=r"INSULT: every label is on one side of 0\.5; it needs positive and negative texts"
    ):
        call_command("train_scorer", "--csv", str(path), "--out", str(tmp_path / "out"), "--holdout", "0")


def test_a_head_fits_soft_labels_rather_than_rounding_them() -> None:
    # Identical texts labelled 0.8 and 0.6 (an LLM's probabilities): the fitted probability is their mean, 0.7.
    embeddings = np.ones((4, 3))

    weights, bias = fit_head(embeddings, [0.8, 0.6, 0.8, 0.6], c=1e6)

    probability = 1 / (1 + np.exp(-(embeddings[0] @ np.asarray(weights) + bias)))
    assert probability == pytest.approx(0.7, abs=0.01)
