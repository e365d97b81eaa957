"""Which items a ranker may move, and how its order is laid back onto the feed.

Pure: plain data in, plain data out.

1. ``plan_slate`` decides, per item, whether the ranker sees it: ads, items
   without text, invalid items and items past the slate size (Table S11, for
   this pass: Facebook posts come in two passes, each its own slate) stay
   fixed. Comments form threads: an item's parent is its ``parent_id`` (or, for
   a top-level comment, its ``post_id``) when that item came earlier in the
   request.
2. ``apply_ranking`` rebuilds the feed group by group (siblings under one
   parent): fixed siblings keep their slots, movable slots are filled in the
   ranker's order, every item brings its replies along, and a removed item
   removes its replies. Inserted items join the top level.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from participants.paper import slate_length, slate_pass, slate_size
from rankers.plugins.base import SlateItem
from rankers.validation import ParsedItem


@dataclass(frozen=True)
class SlatePlan:
    order: list[str]  # the request's ids, in order
    rankable: list[SlateItem]  # what the ranker sees, in request order
    fixed: dict[str, str]  # id -> why it keeps its slot
    parent: dict[str, str | None]  # id -> parent id within the request
    content_type: str
    slate_pass: int = 1  # which of the platform's passes (Table S11) this request is
    slate_length: int = 0  # Table S11's length for this request: what rank changes are divided by

    @property
    def rankable_ids(self) -> list[str]:
        return [item.id for item in self.rankable]


def plan_slate(items: Sequence[ParsedItem], platform: str, requested_pass: int | None = None) -> SlatePlan:
    order = [p.id for p in items]
    parent = _parents(items)
    threads_ok = _depth_first(order, parent) == order
    if not threads_ok:  # replies not right after their parents: keep comments where they are
        parent = dict.fromkeys(order)
    per_type = Counter(_item_type(p) for p in items)
    content_type = "comment" if per_type["comment"] > len(items) - per_type["comment"] else "post"
    pass_number = slate_pass(platform, content_type, per_type[content_type], requested_pass)
    limits = {item_type: slate_size(platform, item_type, pass_number) for item_type in per_type}
    seen_per_type: Counter[str] = Counter()
    rankable: list[SlateItem] = []
    fixed: dict[str, str] = {}
    for p in items:
        item_type = _item_type(p)
        seen_per_type[item_type] += 1
        limit = limits[item_type]
        reason = _fixed_reason(p)
        if not reason and limit is not None and seen_per_type[item_type] > limit:
            reason = "past_slate_size"
        if not reason and not threads_ok and item_type == "comment":
            reason = "thread_order"
        if reason or p.item is None:
            fixed[p.id] = reason
        else:
            rankable.append(p.item)
    return SlatePlan(
        order=order,
        rankable=rankable,
        fixed=fixed,
        parent=parent,
        content_type=content_type,
        slate_pass=pass_number,
        slate_length=slate_length(platform, content_type, pass_number, per_type[content_type]),
    )


def _item_type(p: ParsedItem) -> str:
    return p.item.type if p.item else str(p.raw.get("type", "post"))


def _fixed_reason(p: ParsedItem) -> str:
    if p.invalid_reason:
        return "invalid"
    if p.immovable:
        return "no_text" if p.item is not None and not p.item.has_text else "ad"
    return ""


def _parents(items: Sequence[ParsedItem]) -> dict[str, str | None]:
    """Each item's parent within the request; only earlier items count, so threads never cycle."""
    if not any(p.item and p.item.type == "comment" for p in items):  # a feed of posts is flat
        return dict.fromkeys(p.id for p in items)
    seen: set[str] = set()
    parent: dict[str, str | None] = {}
    for p in items:
        candidates = (p.item.parent_id, p.item.post_id) if p.item and p.item.type == "comment" else ()
        parent[p.id] = next((c for c in candidates if c and c in seen), None)
        seen.add(p.id)
    return parent


def _children(order: Sequence[str], parent: Mapping[str, str | None]) -> dict[str | None, list[str]]:
    children: dict[str | None, list[str]] = defaultdict(list)
    for item_id in order:
        children[parent.get(item_id)].append(item_id)
    return children


def _depth_first(order: Sequence[str], parent: Mapping[str, str | None]) -> list[str]:
    children = _children(order, parent)
    return list(_subtree_walk(None, children))


def _subtree_walk(root: str | None, children: Mapping[str | None, list[str]]) -> Iterator[str]:
    """The replies under ``root``, depth-first; iterative, since a reply chain may be thousands deep."""
    return _expanded(iter(children.get(root, ())), lambda item_id: iter(children.get(item_id, ())))


def _expanded(heads: Iterator[str], below: Callable[[str], Iterator[str]]) -> Iterator[str]:
    """Each head, then (lazily) what ``below`` gives for it, depth-first, with an explicit stack."""
    stack = [heads]
    while stack:
        item_id = next(stack[-1], None)
        if item_id is None:
            stack.pop()
            continue
        yield item_id
        stack.append(below(item_id))


def apply_ranking(
    plan: SlatePlan, ranked_ids: Sequence[str], new_ids: Sequence[str] = ()
) -> tuple[list[str], list[str]]:
    """Lay the ranker's order onto the feed; return (final ids, removed ids).

    ``ranked_ids`` is the ranker's checked output (rankable ids it kept plus
    inserted ids); rankable ids missing from it are removed with their replies.
    """
    if not new_ids and list(ranked_ids) == plan.rankable_ids:  # nothing moved (control): the feed as it came
        return list(plan.order), []
    return _laid_out(plan, ranked_ids, new_ids)


def _laid_out(plan: SlatePlan, ranked_ids: Sequence[str], new_ids: Sequence[str]) -> tuple[list[str], list[str]]:
    position = {item_id: index for index, item_id in enumerate(ranked_ids)}
    movable = set(plan.rankable_ids)
    children = _children(plan.order, plan.parent)
    removed: list[str] = []
    inserted = [i for i in new_ids if i in position]

    def build(group: str | None) -> Iterator[str]:
        """The group's items in their new order; the replies of each follow it (see ``_expanded``)."""
        siblings = children.get(group, [])
        queue = sorted((s for s in siblings if s in movable and s in position), key=position.__getitem__)
        if group is None:
            queue = sorted([*queue, *inserted], key=position.__getitem__)
        slots = [s for s in siblings if s in movable]
        last_slot = slots[-1] if slots else None
        taken = 0
        for sibling in siblings:
            if sibling in movable:
                if sibling not in position:
                    removed.append(sibling)
                    removed.extend(_subtree_walk(sibling, children))
                if taken < len(queue):
                    yield queue[taken]
                    taken += 1
                if sibling == last_slot:
                    for rest in queue[taken:]:
                        yield rest
                    taken = len(queue)
            else:
                yield sibling
        for rest in queue[taken:]:  # a group with no movable slot only gets inserted items
            yield rest

    final = list(_expanded(build(None), build))
    return final, removed
