"""The civic classifier (a tiny transformers model built here, or heads trained on LLM-labelled posts) and the
toxicity model, run over stored posts."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from rankers.content import annotating, classifiers
from rankers.content.models import CandidatePost, ContentSource, LLMStatus, PostAnnotation, TextEmbedding
from rankers.scoring.backends import ScorerUnavailable
from tests.rankers.content.conftest import make_source
from tests.rankers.tiny_models import save_tiny_bert

pytestmark = pytest.mark.django_db

WORDS = ["the", "senate", "votes", "on", "tax", "bill", "my", "cat", "sleeps", "you", "stupid", "idiot"]

POLITICAL = [
    "The Senate votes on the tax bill today.", "Congress passed a new immigration law.",
    "The governor vetoed the abortion bill.", "Voters head to the polls in the midterm election.",
    "The president signed an executive order on climate policy.", "Lawmakers debate the federal budget deficit.",
    "The Supreme Court ruled on gun rights.", "Democrats and Republicans clash over health care reform.",
]  # fmt: skip
EVERYDAY = [
    "My cat sleeps on the sofa all day.", "This banana bread recipe is easy.", "We hiked to the lake this morning.",
    "The new phone has a great camera.", "Our team won the football match.", "I planted tomatoes in the garden.",
    "The concert last night was amazing.", "Try this trick to fold a fitted sheet.",
]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_civic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_bert(
        tmp_path_factory.mktemp("civic"), ["not_civic", "civic"], WORDS, problem_type="single_label_classification"
    )


@pytest.fixture
def source() -> ContentSource:
    return make_source()


def add_posts(source: ContentSource, texts: list[str], **annotation: Any) -> list[CandidatePost]:
    posts = []
    for i, text in enumerate(texts):
        post = CandidatePost.objects.create(
            source=source,
            platform=source.platform,
            post_id=f"{source.pk}-{i}-{hash(text)}",
            url=f"https://e.org/{i}/{abs(hash(text))}",
            text=text,
        )
        PostAnnotation.objects.create(post=post, **annotation)
        posts.append(post)
    return posts


def classify_all() -> int:
    return sum(annotating.classify_posts(chunk) for chunk in annotating.unclassified_chunks(10))


def test_civic_comes_from_a_local_transformers_model_and_toxicity_from_the_profanity_model(
    settings: Any, tiny_civic_dir: Path, source: ContentSource
) -> None:
    settings.PRC_CIVIC_MODEL_DIR = str(tiny_civic_dir)
    calm, rude = add_posts(source, ["the senate votes on the tax bill", "you stupid idiot, shut the fuck up"])

    assert classify_all() == 2

    calm_row, rude_row = (PostAnnotation.objects.get(post=p) for p in (calm, rude))
    for row in (calm_row, rude_row):
        assert row.civic is not None
        assert 0.0 <= row.civic <= 1.0
        assert row.classified_at is not None
        assert row.classifier_version.startswith(f"civic=transformers:{tiny_civic_dir.name};toxicity=")
    assert rude_row.toxicity is not None
    assert calm_row.toxicity is not None
    assert rude_row.toxicity > 0.8 > 0.2 > calm_row.toxicity
    assert TextEmbedding.objects.count() == 2


def test_classifying_twice_changes_nothing_and_a_new_civic_model_classifies_again(
    settings: Any, tiny_civic_dir: Path, source: ContentSource
) -> None:
    add_posts(source, ["my cat sleeps", "the senate votes"])
    assert classify_all() == 2
    before = list(PostAnnotation.objects.order_by("pk").values("civic", "toxicity", "classifier_version"))

    assert classify_all() == 0
    assert list(PostAnnotation.objects.order_by("pk").values("civic", "toxicity", "classifier_version")) == before
    assert all(row["civic"] is None for row in before)  # no civic model configured: toxicity only

    settings.PRC_CIVIC_MODEL_DIR = str(tiny_civic_dir)
    assert classify_all() == 2
    assert PostAnnotation.objects.filter(civic__isnull=False).count() == 2


def test_a_civic_model_without_the_civic_label_is_refused(tiny_civic_dir: Path) -> None:
    with pytest.raises(ScorerUnavailable, match="no label POLITICAL"):
        classifiers.load_civic_model(str(tiny_civic_dir), "political")


def test_train_scorer_fits_a_civic_head_on_llm_labelled_posts_that_classification_then_uses(
    settings: Any, tmp_path: Path, source: ContentSource
) -> None:
    def labelled(political: bool) -> dict[str, Any]:
        return {"quality": {"is_political_social": political}, "annotated_at": timezone.now(), "llm_status": "done"}

    add_posts(source, POLITICAL, **labelled(True))
    add_posts(source, EVERYDAY, **labelled(False))
    add_posts(source, ["A post the LLM could not read."], llm_status=LLMStatus.FAILED)
    out = tmp_path / "civic-heads"
    output = StringIO()

    call_command("train_scorer", "--from-annotations", "--out", str(out), "--holdout", "0", "--c", "10", stdout=output)

    assert "Saved a scorer of CIVIC" in output.getvalue()
    assert "(16 labels)" in output.getvalue()
    settings.PRC_CIVIC_MODEL_DIR = str(out)
    new = add_posts(source, ["The House passed the defense spending bill.", "I baked cookies with my kids."])
    annotating.classify_posts([post.pk for post in new])
    political, everyday = (PostAnnotation.objects.get(post=p) for p in new)
    assert political.civic is not None
    assert everyday.civic is not None
    assert political.civic > 0.5 > everyday.civic
    assert political.classifier_version.startswith("civic=heads:civic-heads;")


def test_train_scorer_from_annotations_needs_labelled_posts(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no LLM-annotated posts"):
        call_command("train_scorer", "--from-annotations", "--out", str(tmp_path / "x"))
