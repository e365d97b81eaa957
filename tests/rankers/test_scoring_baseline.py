from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from rankers.plugins.base import SlateItem
from rankers.scoring import attributes as A
from rankers.scoring import configure, score_items
from rankers.scoring.backends.base import Scores

BRIDGING_TEXT = (
    "I understand why you feel that way. When my father lost his job, we struggled too, because the plant closed. "
    "What do you think would help families like ours? Thank you for sharing."
)
INSULT_TEXT = "You are a stupid worthless idiot, shut the fuck up."


@pytest.fixture(autouse=True)
def fresh_scorer(settings: object) -> Iterator[None]:
    configure()
    yield
    configure()


def test_baseline_scores_bridging_text_higher_on_every_bridging_attribute_than_an_insult() -> None:
    scores = score_items([SlateItem("kind", BRIDGING_TEXT), SlateItem("rude", INSULT_TEXT)], A.ALL)

    for attribute in A.BRIDGING:
        assert scores["kind"][attribute] > scores["rude"][attribute], attribute


def test_baseline_scores_an_insult_higher_on_toxicity_and_insult() -> None:
    scores = score_items([SlateItem("kind", BRIDGING_TEXT), SlateItem("rude", INSULT_TEXT)], A.ALL)

    assert scores["rude"][A.TOXICITY] > 0.8 > scores["kind"][A.TOXICITY]
    assert scores["rude"][A.INSULT] > scores["kind"][A.INSULT]


def test_baseline_sees_us_versus_them_rhetoric() -> None:
    text = "These people are vermin who are destroying this country. They all need to go back!"
    scores = score_items([SlateItem("them", text), SlateItem("kind", BRIDGING_TEXT)], A.PERSUASION)

    for attribute in (A.ALIENATION, A.GENERALIZATION, A.FEARMONGERING):
        assert scores["them"][attribute] > scores["kind"][attribute], attribute


def test_scores_are_in_the_unit_interval_for_the_requested_attributes_only() -> None:
    items = [SlateItem(str(i), text) for i, text in enumerate([BRIDGING_TEXT, INSULT_TEXT, "ok", "?!?!", "🙂"])]

    scores = score_items(items, [A.REASONING, A.TOXICITY])

    assert set(scores) == {"0", "1", "2", "3", "4"}
    for item_scores in scores.values():
        assert set(item_scores) == {A.REASONING, A.TOXICITY}
        assert all(0.0 <= value <= 1.0 for value in item_scores.values())


def test_items_without_text_are_unscored() -> None:
    scores = score_items([SlateItem("empty", ""), SlateItem("blank", "  \n"), SlateItem("text", "hello")], A.TOXIC)

    assert set(scores) == {"text"}


class CountingBackend:
    name = "counting"

    def __init__(self) -> None:
        self.texts_seen: list[str] = []

    def score(self, texts: Sequence[str], attributes: Sequence[str]) -> list[Scores | None]:
        self.texts_seen.extend(texts)
        return [dict.fromkeys(attributes, 0.5) for _ in texts]


def test_a_cached_text_is_not_sent_to_the_backend_again() -> None:
    backend = CountingBackend()
    configure(backend=backend)

    score_items([SlateItem("a", "same text"), SlateItem("b", "same text"), SlateItem("c", "other")], A.BRIDGING)
    second = score_items([SlateItem("z", "same text")], A.BRIDGING)

    assert backend.texts_seen == ["same text", "other"]
    assert second == {"z": dict.fromkeys(A.BRIDGING, 0.5)}


def test_a_cache_entry_serves_a_subset_of_its_attributes_but_not_a_superset() -> None:
    backend = CountingBackend()
    configure(backend=backend)

    score_items([SlateItem("a", "text")], [*A.BRIDGING, *A.TOXIC])
    score_items([SlateItem("a", "text")], A.BRIDGING)
    assert backend.texts_seen == ["text"]

    score_items([SlateItem("a", "text")], A.ALL)
    assert backend.texts_seen == ["text", "text"]


class BrokenBackend:
    name = "broken"

    def score(self, texts: Sequence[str], attributes: Sequence[str]) -> list[Scores | None]:
        raise RuntimeError("model exploded")


class ShortBackend:
    name = "short"

    def score(self, texts: Sequence[str], attributes: Sequence[str]) -> list[Scores | None]:
        return [{"TOXICITY": float("nan")}]


@pytest.mark.parametrize("backend", [BrokenBackend(), ShortBackend()])
def test_score_items_never_raises_on_a_failing_backend(backend: object) -> None:
    configure(backend=backend)  # type: ignore[arg-type]

    assert score_items([SlateItem("a", "x"), SlateItem("b", "y")], A.TOXIC) == {}


def test_score_items_never_raises_on_an_unknown_backend_setting(settings: object) -> None:
    settings.PRC_SCORER_BACKEND = "perspective-please"  # type: ignore[attr-defined]

    assert score_items([SlateItem("a", "text")], A.TOXIC) == {}


def test_a_failed_text_is_retried_next_time() -> None:
    class FlakyBackend(CountingBackend):
        def score(self, texts: Sequence[str], attributes: Sequence[str]) -> list[Scores | None]:
            super().score(texts, attributes)
            return [None if len(self.texts_seen) == 1 else dict.fromkeys(attributes, 0.25) for _ in texts]

    backend = FlakyBackend()
    configure(backend=backend)

    assert score_items([SlateItem("a", "text")], A.TOXIC) == {}
    assert score_items([SlateItem("a", "text")], A.TOXIC) == {"a": dict.fromkeys(A.TOXIC, 0.25)}


def test_baseline_civic_score_tells_political_posts_from_everyday_ones() -> None:
    scores = score_items(
        [
            SlateItem("civic", "The Senate votes on the immigration bill before the election."),
            SlateItem("everyday", "Made banana bread with my kids this morning, so good."),
        ],
        (A.CIVIC,),
    )
    assert scores["civic"][A.CIVIC] > 0.7
    assert scores["everyday"][A.CIVIC] == 0.0
