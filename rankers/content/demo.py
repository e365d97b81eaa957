"""The demo's candidate inventory: sources, annotated posts and their embeddings, then the pools and queues the three
inserting arms serve from (``manage.py seed_demo_content``; ``seed_demo`` runs it before the demo's rehearsal, so
that its inserting arms insert, and ``personalize`` after it, so that Add News has served posts to personalize on and
Challenging Stereotypes baseline answers).

Nothing calls the network, an LLM or a model: every post's annotation is drawn at random, deterministically from its
id, and stored through the same models the annotators fill (``llm_model`` and ``classifier_version`` say
``demo-synthetic``); its embedding is a hashed bag of words (encoder name ``demo-words``), so posts that share words
are near each other. The demo's served posts get the same kind of vector, so Add News finds neighbours without
loading MiniLM. The pools and queues then come from the real refresh (``queues.refresh_platform``).

Posts are "fetched" once per ``SLOT_H`` hours: a run stores the slot's posts (posted over the last hours) with a
succeeded run record per source, so restarting the demo later brings fresh posts, and a second run within the
slot stores nothing new. Takes about a second.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import transaction
from django.utils import timezone

from participants.paper import PLATFORMS
from rankers.content import queues
from rankers.content.annotation import ISSUES, QUALITY_FLAGS
from rankers.content.embeddings import embedding_input
from rankers.content.models import INSERTING_ARMS, Connector, ConnectorRun, ContentSource, Lean, SourceKind
from rankers.content.synthetic import NewPost, store_embeddings, store_posts
from rankers.models import ContentItem

DEMO_MODEL = "demo-synthetic"  # llm_model, prompt_version and classifier_version of the demo's annotations
VECTOR_MODEL = "demo-words"  # the encoder name of the demo's bag-of-words vectors
DIM = 384  # MiniLM's width, so the demo's vectors sit beside real ones
SLOT_H = 6
POSTS_PER_SOURCE = 6
HOURS_APART = 3  # a source's posts in a slot: now, 3 h before, ... (all within Diverse Approval's 24 h)

SOURCES: dict[str, tuple[str, ...]] = {
    Lean.LEFT: ("Riverside Progressive", "Civic Commons Daily"),
    Lean.CENTRE: ("Middle Ground News", "The Plain Report"),
    Lean.RIGHT: ("Heartland Courier", "Liberty Ledger"),
}
KIND = {"reddit": SourceKind.SUBREDDIT, "twitter": SourceKind.ACCOUNT, "facebook": SourceKind.PAGE}
SITES = {"reddit": "https://www.reddit.com/r/", "twitter": "https://x.com/", "facebook": "https://www.facebook.com/"}

# (issue, topic words): the demo's served posts talk about budgets, housing, schools, elections and neighbours,
# so the topics share their words and Add News has something near.
TOPICS = (
    ("economy", "the city budget and local taxes"),
    ("economy", "housing costs in the neighbourhood"),
    ("immigration", "immigration and the new arrivals in town"),
    ("climate", "climate policy and the new bike lanes"),
    ("media", "how the local news covered the election"),
    ("trump", "Trump's campaign stop at the football stadium"),
    ("racism", "the school board's debate on racism and history lessons"),
    ("abortion", "the state legislature's abortion vote"),
    ("military", "veterans and the military base near the city"),
    ("israel", "the council's statement on Israel"),
)
HEADLINES = (
    "{outlet} asks readers on both sides about {topic}",
    "What people get wrong about {topic}",
    "A volunteer group finds common ground on {topic}",
    "Five facts about {topic}",
    "Why a lifelong {party} changed their mind on {topic}",
    "The debate over {topic}, explained",
)
# Issues on which the left's position is the prompt's higher number (5: more immigration, trusts the media, ...).
LEFT_IS_HIGH = {"media", "immigration", "abortion", "climate", "racism"}
ORIENTATION = {Lean.LEFT: (2, 3, 3, 4), Lean.CENTRE: (3, 4, 4, 5), Lean.RIGHT: (4, 5, 5, 6)}  # 1 = liberal


@dataclass(frozen=True)
class DemoContent:
    sources: int
    new_posts: int
    refreshed: list[queues.RefreshResult]


def seed_demo_content(now: dt.datetime | None = None) -> DemoContent:
    """Sources on every platform, this slot's annotated posts with their vectors, vectors for the demo's served
    posts, then every platform's pools and queues."""
    now = now or timezone.now()
    slot = int(now.timestamp() // (SLOT_H * 3600))
    new_posts = 0
    with transaction.atomic():
        sources = demo_sources()
        for source in sources:
            stored = store_posts(source, slot_posts(source, slot, now), model=VECTOR_MODEL, now=now)
            if stored:
                new_posts += len(stored)
                ConnectorRun.objects.create(
                    source=source,
                    connector=source.connector,
                    trigger="file",
                    status=ConnectorRun.Status.SUCCEEDED,
                    started_at=now,
                    finished_at=now,
                    items_read=len(stored),
                    items_new=len(stored),
                )
        embed_served_posts()
    refreshed = [result for platform in PLATFORMS for result in queues.refresh_platform(platform, now=now)]
    return DemoContent(sources=len(sources), new_posts=new_posts, refreshed=refreshed)


def demo_sources() -> list[ContentSource]:
    """Six sources per platform, two per lean, drawing for every inserting arm (dataset sources filled by hand)."""
    sources = []
    for platform in PLATFORMS:
        for lean, names in SOURCES.items():
            for name in names:
                source, _ = ContentSource.objects.get_or_create(
                    platform=platform,
                    connector=Connector.DATASET,
                    name=name,
                    defaults={"kind": KIND[platform], "lean": lean, "arms": list(INSERTING_ARMS), "reliability": 80},
                )
                sources.append(source)
    return sources


def slot_posts(source: ContentSource, slot: int, now: dt.datetime) -> list[NewPost]:
    posts = []
    handle = re.sub(r"[^a-z]", "", source.name.lower())
    for n in range(POSTS_PER_SOURCE):
        post_id = f"demo-{slot}-{source.pk}-{n}"
        rng = random.Random(post_id)
        issue, topic = rng.choice(TOPICS)
        party = "Democrat" if source.lean == Lean.RIGHT else "Republican"
        title = rng.choice(HEADLINES).format(outlet=source.name, topic=topic, party=party)
        text = f"{title}. {source.name} talked to neighbours, the city council and local business owners about {topic}."
        posts.append(
            NewPost(
                post_id=post_id,
                url=f"{SITES[source.platform]}{handle}/posts/{post_id}",
                title=title,
                text=text,
                created_at=now - dt.timedelta(hours=n * HOURS_APART + rng.uniform(0, 1)),
                annotation=synthetic_annotation(source.lean, issue, rng),
                vector=word_vector(embedding_input(title, text)),
            )
        )
    return posts


def synthetic_annotation(lean: str, issue: str, rng: random.Random) -> dict[str, Any]:
    """PostAnnotation columns for a post of a source with ``lean`` about ``issue``: quality flags as probabilities
    (prompt version 2) that most posts pass; a few fail one (outrage, frivolous, pessimistic) so the filters have
    something to drop."""
    quality = {flag: round(rng.uniform(0, 0.08), 2) for flag in QUALITY_FLAGS}
    quality["has_enough_context"] = round(rng.uniform(0.8, 1), 2)
    quality["is_political_social"] = round(rng.uniform(0.7, 1), 2)
    if rng.random() < 0.1:
        quality[rng.choice(("is_outrage", "is_frivolous", "is_pessimistic"))] = round(rng.uniform(0.7, 1), 2)
    surprising = rng.random() < 0.3
    leans_left = (lean == Lean.LEFT) != surprising  # a surprising post argues the other side's position
    position = rng.choice((4, 5)) if leans_left == (issue in LEFT_IS_HIGH) else rng.choice((1, 2))
    if lean == Lean.CENTRE:
        position = rng.choice((2, 3, 4))
    bridging = rng.random() < 0.4
    favoured, other = (rng.uniform(3.5, 5), rng.uniform(3, 4.5) if bridging else rng.uniform(1.5, 3))
    republican, democrat = (other, favoured) if lean == Lean.LEFT else (favoured, other)
    return {
        "quality": quality,
        "political_orientation": rng.choice(ORIENTATION[Lean(lean)]),
        "issue_opinions": {name: (position if name == issue else None) for name in ISSUES},
        "ideologically_surprising": surprising,
        "bridging": bridging,
        "approval_republican": round(republican, 1),
        "approval_democrat": round(democrat, 1),
        "national_interest": rng.random() < 0.85,
        "civic": round(rng.uniform(0.55, 0.98), 3),
        "toxicity": round(rng.uniform(0.0, 0.2), 3),
        "llm_model": DEMO_MODEL,
        "prompt_version": DEMO_MODEL,
        "classifier_version": DEMO_MODEL,
        "classified_at": timezone.now(),
    }


WORD = re.compile(r"[a-z]{3,}")


def word_vector(text: str) -> np.ndarray:
    """A hashed bag of words in ``DIM`` dimensions (each word adds ±1 to one dimension): texts sharing words have
    a high cosine similarity. Normalized when stored."""
    vector = np.zeros(DIM, dtype=np.float32)
    for word in WORD.findall(text.lower()) or [text]:
        digest = hashlib.sha256(word.encode()).digest()
        vector[int.from_bytes(digest[:4], "big") % DIM] += 1.0 if digest[4] & 1 else -1.0
    if not vector.any():
        vector[0] = 1.0
    return vector


def personalize(now: dt.datetime | None = None) -> int:
    """Once the demo's rehearsal has served slates and collected baseline answers: vectors for the posts it served,
    then every platform's pools and queues again, personalized on them; returns how many personalized queues."""
    now = now or timezone.now()
    embed_served_posts()
    return sum(result.personalized for platform in PLATFORMS for result in queues.refresh_platform(platform, now=now))


def embed_served_posts() -> None:
    """Vectors for the posts the demo's slates served (the rehearsal's), for Add News."""
    items = ContentItem.objects.filter(type="post").values_list("text_hash", "title", "text")
    store_embeddings(
        {digest: word_vector(embedding_input(title, text)) for digest, title, text in items}, model=VECTOR_MODEL
    )
