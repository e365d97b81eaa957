"""The ranker interface: plain data in, plain data out, no ORM.

A ranker gets the rankable part of a slate (immovable items and items past the
slate size are handled by the caller) and a context, and returns the ids in
their new order plus any items it inserts. The caller checks the result and
falls back to the original order on any violation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol


@dataclass(slots=True)
class SlateItem:
    """One rankable feed item. Treat it as read-only: it is not frozen only because a frozen dataclass
    costs three times as much to build, and /rank builds fifty per request."""

    id: str
    text: str
    type: str = "post"  # "post" or "comment"
    title: str | None = None
    post_id: str | None = None
    parent_id: str | None = None
    author_name_hash: str = ""
    created_at: dt.datetime | None = None
    engagements: Mapping[str, int] = field(default_factory=dict)
    embedded_urls: Sequence[str] = ()
    language: str | None = None

    @property
    def full_text(self) -> str:
        """What classifiers read: the title first (Reddit posts have one), then the body; "" when neither has text."""
        title, text = (self.title or "").strip(), self.text.strip()
        return f"{title}\n\n{text}" if title and text else title or text

    @property
    def has_text(self) -> bool:
        """Items without text (uncaptioned photos and videos) are immovable; a title alone is text."""
        return bool(self.text.strip() or (self.title and self.title.strip()))


@dataclass(frozen=True)
class NewItem:
    """An item a ranker inserts: a public post from the candidate inventory.

    Only ``id`` and ``url`` go to the extension; the provenance fields go to the slate log (``Slate.inserted``),
    so that exposure by viewpoint can be analysed per arm.
    """

    id: str
    url: str
    type: str = "post"
    text: str = ""
    source_id: int | None = None
    lean: str = ""  # the source's lean: left, centre, right or "" (not rated)
    annotation_version: str = ""

    def provenance(self) -> dict[str, Any]:
        """What the slate log keeps of an inserted post, so exposure by viewpoint can be analysed per arm."""
        return {
            "id": self.id,
            "source_id": self.source_id,
            "lean": self.lean,
            "annotation_version": self.annotation_version,
        }


@dataclass(frozen=True, slots=True)
class Candidate:
    """A post of the candidate inventory as an inserting ranker sees it: plain data, loaded before the ranker runs.

    Annotation fields are None where the post has not been annotated on that dimension. ``quality`` maps the
    paper's quality flags (section 3.3: ``is_nsfw``, ``is_niche``, ..., ``has_enough_context``) to a probability
    in [0, 1] (a yes/no annotation is 1.0/0.0). ``political_orientation`` is on the paper's scale: 1 extremely
    conservative ... 4 moderate ... 7 extremely liberal.
    """

    id: str  # the id the inserted item carries in the feed
    url: str
    source_id: int
    lean: str = ""
    posted_at: dt.datetime | None = None
    post_id: str = ""  # the platform's own id, to skip a post the feed already shows
    annotation_version: str = ""
    civic: float | None = None
    approval_republican: float | None = None
    approval_democrat: float | None = None
    national_interest: bool | None = None
    political_orientation: float | None = None
    ideologically_surprising: bool | None = None
    quality: Mapping[str, float] = field(default_factory=dict)
    score: float = 0.0  # the queue's order: higher first

    def new_item(self) -> NewItem:
        return NewItem(
            id=self.id,
            url=self.url,
            source_id=self.source_id,
            lean=self.lean,
            annotation_version=self.annotation_version,
        )


@dataclass(frozen=True)
class RankContext:
    platform: str
    content_type: str  # "post" or "comment"
    user_id: str  # pseudonymous participant id
    now: dt.datetime
    config: Mapping[str, Any] = field(default_factory=dict)
    # Precomputed attribute scores per item id (attribute -> score in [0, 1]); missing = unscored.
    scores: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    # Candidate posts an inserting ranker may draw from, best first (the participant's queue, else the pool),
    # loaded before the ranker runs (``rankers.content.inventory``); empty for every other ranker.
    candidates: Sequence[Candidate] = ()
    # Ids of candidates this participant was shown recently (prefetch requests do not count), and when the
    # newest post of this platform's inventory was posted (None: no inventory).
    shown: frozenset[str] = frozenset()
    inventory_newest_at: dt.datetime | None = None
    page_url: str = ""  # the page the feed is on (session.url): inserting arms act on main feeds only
    prefetch: bool = False
    # The participant's baseline answers as a PRC ``SurveyResponse`` dict ({} when not answered yet).
    survey: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RankResult:
    ranked_ids: list[str]
    new_items: list[NewItem] = field(default_factory=list)


class Ranker(Protocol):
    """A ranker plugin.

    Optional members the serving code looks for: ``async def arank(items, context)``
    (awaited instead of ``rank``: for rankers that call other services) and
    ``inline = True`` (``rank`` is trivially cheap and needs no scores, so it runs
    on the event loop instead of the thread pool; a budget timeout cannot stop
    it, so only pass-through-like rankers should say so).
    """

    name: ClassVar[str]
    # Attribute names this ranker needs scored before it runs (empty = none).
    attributes: ClassVar[tuple[str, ...]]

    def rank(self, items: Sequence[SlateItem], context: RankContext) -> RankResult: ...


_REGISTRY: dict[str, Ranker] = {}


def register(name: str) -> Callable[[type], type]:
    """Class decorator: instantiate the ranker and add it to the registry under ``name``."""

    def decorate(cls: type) -> type:
        setattr(cls, "name", name)  # noqa: B010 (the protocol's ClassVar, set on a plain class)
        _REGISTRY[name] = cls()
        return cls

    return decorate


def get_ranker(name: str) -> Ranker:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise LookupError(f"no ranker registered as {name!r}") from None


def all_rankers() -> dict[str, Ranker]:
    return dict(_REGISTRY)
