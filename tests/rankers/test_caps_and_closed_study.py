"""Caps trim a ranker's output to its first items instead of dropping the treatment; a closed study ranks nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import pytest
from django.test import AsyncClient
from hypothesis import given
from hypothesis import strategies as st

from participants.models import Study
from participants.paper import CapRule
from rankers.checks import Caps, apply_caps, check_result
from rankers.models import ContentItem, Slate
from rankers.plugins import NewItem, RankContext, RankResult, SlateItem
from rankers.plugins import base as plugins
from tests.rankers.conftest import item, post_rank, request_with, valid_response


def _news(n: int, prefix: str = "news") -> list[NewItem]:
    return [NewItem(id=f"{prefix}-{k}", url=f"https://news.example.org/{prefix}/{k}") for k in range(n)]


class Flooder:
    """Inserts twelve news posts at the top: more than Add News' 15 % of a 50-post slate."""

    name: ClassVar[str] = "add_news"
    attributes: ClassVar[tuple[str, ...]] = ()

    def rank(self, items: Sequence[SlateItem], context: RankContext) -> RankResult:
        news = _news(12)
        return RankResult(ranked_ids=[n.id for n in news] + [i.id for i in items], new_items=news)


class Replacer:
    """Replaces the first fifteen posts with fifteen others: more than Challenging Stereotypes' 20 %."""

    name: ClassVar[str] = "challenging_stereotypes"
    attributes: ClassVar[tuple[str, ...]] = ()

    def rank(self, items: Sequence[SlateItem], context: RankContext) -> RankResult:
        new = _news(15, "swap")
        return RankResult(ranked_ids=[n.id for n in new] + [i.id for i in items[15:]], new_items=new)


@pytest.mark.django_db(transaction=True)
async def test_add_news_inserting_too_much_keeps_its_first_posts_up_to_15_percent(
    async_client: AsyncClient, enrol, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(plugins._REGISTRY, "add_news", Flooder())
    participant, token = await enrol("add_news")  # no caps set on the arm: the paper's rule for Add News
    posts = [item(f"p{i}") for i in range(50)]

    response = valid_response(await post_rank(async_client, token, request_with(participant.public_id, posts)))

    # 8 of 58 posts shown is 13.8 %; a ninth would be 15.3 %.
    assert response.ranked_ids == [f"news-{k}" for k in range(8)] + [f"p{i}" for i in range(50)]
    assert [n.id for n in response.new_items or []] == [f"news-{k}" for k in range(8)]
    assert response.metadata is not None
    assert response.metadata.intervention_on is True
    slate = await Slate.objects.aget(participant_id=participant.public_id)
    assert (slate.capped, slate.fallback_reason, slate.n_added) == (True, "", 8)


@pytest.mark.django_db(transaction=True)
async def test_a_replacing_arm_over_its_caps_keeps_its_first_removals_and_insertions(
    async_client: AsyncClient, enrol, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(plugins._REGISTRY, "challenging_stereotypes", Replacer())
    participant, token = await enrol("challenging_stereotypes")
    posts = [item(f"p{i}") for i in range(50)]

    response = valid_response(await post_rank(async_client, token, request_with(participant.public_id, posts)))

    # 20 % of 50: the first 10 removals stay; p10..p14 come back (their predecessors are gone, so at the top);
    # 10 insertions keep 10 / 50 shown at 20 %.
    expected = [f"p{i}" for i in range(10, 15)] + [f"swap-{k}" for k in range(10)] + [f"p{i}" for i in range(15, 50)]
    assert response.ranked_ids == expected
    slate = await Slate.objects.aget(participant_id=participant.public_id)
    assert (slate.capped, slate.n_added, slate.n_deleted) == (True, 10, 10)


@pytest.mark.django_db(transaction=True)
async def test_a_ranker_within_its_caps_is_not_marked_capped(async_client: AsyncClient, enrol) -> None:
    participant, token = await enrol("reverse")

    await post_rank(async_client, token, request_with(participant.public_id, [item("a"), item("b")]))

    slate = await Slate.objects.aget(participant_id=participant.public_id)
    assert (slate.capped, slate.intervention_on) == (False, True)


@pytest.mark.django_db(transaction=True)
async def test_a_closed_study_returns_the_untouched_feed_and_stores_nothing(
    async_client: AsyncClient, enrol, study: Study
) -> None:
    participant, token = await enrol("reverse")
    await Study.objects.filter(pk=study.pk).aupdate(status=Study.Status.CLOSED)
    posts = [item(f"p{i}") for i in range(5)]

    response = valid_response(await post_rank(async_client, token, request_with(participant.public_id, posts)))

    assert response.ranked_ids == [f"p{i}" for i in range(5)]
    assert response.metadata is not None
    assert response.metadata.intervention_on is False
    assert await Slate.objects.acount() == 0
    assert await ContentItem.objects.acount() == 0


@st.composite
def outputs(draw: st.DrawFn) -> tuple[list[str], RankResult, Caps]:
    known = [f"k{i}" for i in range(draw(st.integers(1, 40)))]
    kept = draw(st.lists(st.sampled_from(known), unique=True, min_size=1))
    news = _news(draw(st.integers(0, 15)))
    ranked = draw(st.permutations(kept + [n.id for n in news]))
    pct = st.one_of(st.none(), st.integers(0, 100))
    caps = Caps(
        max_inserted=draw(st.one_of(st.none(), st.integers(0, 10))),
        max_deleted=draw(st.one_of(st.none(), st.integers(0, 10))),
        rule=CapRule(draw(pct), draw(pct)),
    )
    return known, RankResult(ranked_ids=list(ranked), new_items=news), caps


@given(outputs())
def test_capping_keeps_the_first_items_within_both_caps_and_a_valid_answer(data) -> None:
    known, result, caps = data

    capped, was_capped = apply_caps(result, known, caps, n_items=len(known))

    assert check_result(capped, known) is None
    inserted = [i for i in capped.ranked_ids if i not in set(known)]
    removed = [i for i in known if i not in set(capped.ranked_ids)]
    wanted_inserted = [i for i in result.ranked_ids if i not in set(known)]
    wanted_removed = [i for i in known if i not in set(result.ranked_ids)]
    assert inserted == wanted_inserted[: len(inserted)]  # the ranker's first insertions, in its order
    assert removed == wanted_removed[: len(removed)]  # the first removals, in the request's order
    allowed_deleted = caps.deletions_allowed(len(known))
    assert allowed_deleted is None or len(removed) <= allowed_deleted
    allowed_inserted = caps.insertions_allowed(len(known) - len(removed))
    assert allowed_inserted is None or len(inserted) <= allowed_inserted
    assert was_capped == ((inserted, removed) != (wanted_inserted, wanted_removed))
    kept_order = [i for i in capped.ranked_ids if i in set(result.ranked_ids)]
    assert kept_order == [i for i in result.ranked_ids if i in set(kept_order)]  # the ranker's order, kept
