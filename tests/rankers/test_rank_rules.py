"""Slate rules: immovable items, slate sizes, threads; through HTTP and as pure functions."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from django.test import AsyncClient
from hypothesis import given
from hypothesis import strategies as st

from rankers.plugins import NewItem
from rankers.slate_metrics import _change, slate_change
from rankers.slate_rules import _laid_out, apply_ranking, plan_slate
from rankers.validation import parse_item
from tests.rankers.conftest import item, post_rank, request_with, valid_response


@pytest.mark.django_db(transaction=True)
async def test_ads_and_items_without_text_keep_their_positions(async_client: AsyncClient, enrol) -> None:
    participant, token = await enrol("reverse")
    items = [item("a"), item("ad", is_ad=True), item("b"), item("empty", text=""), item("c"), item("d")]

    response = valid_response(await post_rank(async_client, token, request_with(participant.public_id, items)))

    assert response.ranked_ids == ["d", "ad", "c", "empty", "b", "a"]
    assert response.metadata is not None
    assert response.metadata.intervention_on is True


@pytest.mark.django_db(transaction=True)
async def test_a_reply_chain_1300_comments_deep_is_ranked_not_a_server_error(async_client: AsyncClient, enrol) -> None:
    participant, token = await enrol("reverse")
    comment = {"type": "comment", "post_id": "post"}
    chain = [item("r0", **comment)] + [item(f"r{i}", parent_id=f"r{i - 1}", **comment) for i in range(1, 1300)]
    items = [item("top", **comment), *chain]

    response = valid_response(await post_rank(async_client, token, request_with(participant.public_id, items)))

    # Two top-level threads swap places; the chain travels whole with its first comment.
    assert response.ranked_ids == [f"r{i}" for i in range(1300)] + ["top"]


def test_a_deep_chain_with_its_root_removed_removes_every_reply() -> None:
    comment = {"type": "comment", "post_id": "post"}
    chain = [item("r0", **comment)] + [item(f"r{i}", parent_id=f"r{i - 1}", **comment) for i in range(1, 1500)]
    plan = plan_slate([parse_item(raw["id"], raw, "reddit") for raw in [item("top", **comment), *chain]], "reddit")

    final, removed = apply_ranking(plan, ["top"])

    assert final == ["top"]
    assert removed == [f"r{i}" for i in range(1500)]


@pytest.mark.django_db(transaction=True)
async def test_comments_are_reordered_within_their_thread_level(async_client: AsyncClient, enrol) -> None:
    participant, token = await enrol("reverse")
    comment = {"type": "comment", "post_id": "post"}
    items = [
        item("c1", **comment),
        item("c1r1", parent_id="c1", **comment),
        item("c1r2", parent_id="c1", **comment),
        item("c2", **comment),
        item("c2r1", parent_id="c2", **comment),
    ]

    response = valid_response(await post_rank(async_client, token, request_with(participant.public_id, items)))

    assert response.ranked_ids == ["c2", "c2r1", "c1", "c1r2", "c1r1"]


@pytest.mark.django_db(transaction=True)
async def test_a_deleted_comment_takes_its_replies_with_it(async_client: AsyncClient, enrol) -> None:
    participant, token = await enrol("drop_first", max_deleted_pct=100)
    comment = {"type": "comment", "post_id": "post"}
    items = [item("c1", **comment), item("c1r1", parent_id="c1", **comment), item("c2", **comment)]

    response = valid_response(await post_rank(async_client, token, request_with(participant.public_id, items)))

    assert response.ranked_ids == ["c2"]


def _parsed(ids: Sequence[str], fixed: frozenset[str] = frozenset()) -> list:
    return [parse_item(i, item(i, text="" if i in fixed else "words"), "twitter") for i in ids]


ids_and_fixed = st.lists(st.text("abcdefgh", min_size=1, max_size=3), min_size=0, max_size=30, unique=True).flatmap(
    lambda ids: st.tuples(st.just(ids), st.frozensets(st.sampled_from(ids)) if ids else st.just(frozenset()))
)


@given(ids_and_fixed, st.randoms(use_true_random=False))
def test_a_reordering_is_a_permutation_with_immovable_items_fixed(data, rnd) -> None:
    ids, fixed = data
    plan = plan_slate(_parsed(ids, fixed), "twitter")
    order = plan.rankable_ids
    rnd.shuffle(order)

    final, removed = apply_ranking(plan, order)

    assert sorted(final) == sorted(ids)
    assert removed == []
    assert all(final[ids.index(f)] == f for f in fixed)


@given(ids_and_fixed, st.randoms(use_true_random=False), st.integers(0, 3))
def test_deletions_and_insertions_change_only_those_items(data, rnd, n_new) -> None:
    ids, fixed = data
    plan = plan_slate(_parsed(ids, fixed), "twitter")
    kept = [i for i in plan.rankable_ids if rnd.random() < 0.7]
    new = [NewItem(id=f"new{k}", url=f"https://example.com/{k}").id for k in range(n_new)]
    order = kept + new
    rnd.shuffle(order)

    final, removed = apply_ranking(plan, order, new)

    assert sorted(final) == sorted([i for i in ids if i not in set(removed)] + new)
    assert set(removed) == set(plan.rankable_ids) - set(kept)
    assert [f for f in final if f in fixed] == [i for i in ids if i in fixed]


@st.composite
def threaded_slates(draw: st.DrawFn) -> list:
    """Posts and comment threads; most in depth-first order (replies right under their parent), some shuffled."""
    raws, path = [], []  # path: the chain of comments the next reply may hang under
    for k in range(draw(st.integers(0, 25))):
        fields: dict = {"type": draw(st.sampled_from(["post", "comment"]))}
        if fields["type"] == "comment":
            fields["post_id"] = "the-post"
            del path[draw(st.integers(0, len(path))) :]
            if path:
                fields["parent_id"] = path[-1]
            path.append(f"i{k}")
        else:
            path = []
        raws.append(item(f"i{k}", text=draw(st.sampled_from(["words", "words", ""])), **fields))
    order = draw(st.permutations(raws)) if draw(st.integers(0, 4)) == 0 else raws
    return [parse_item(r["id"], r, "reddit") for r in order]


@given(threaded_slates())
def test_the_unchanged_order_shortcut_gives_what_the_full_layout_gives(parsed) -> None:
    plan = plan_slate(parsed, "reddit")

    assert apply_ranking(plan, plan.rankable_ids) == _laid_out(plan, plan.rankable_ids, ()) == (plan.order, [])


@given(st.lists(st.text("abcdefghij", min_size=1, max_size=2), max_size=40, unique=True))
def test_the_unchanged_slate_shortcut_gives_what_the_full_measures_give(ids) -> None:
    fast, full = slate_change(ids, list(ids)), _change(ids, list(ids))

    assert (fast.nrc, fast.n_items, fast.added_ids, fast.deleted_ids) == (full.nrc, full.n_items, [], [])
    assert fast.rbo == pytest.approx(full.rbo) if ids else fast.rbo is full.rbo is None
