"""The paper's two personalizations, as pure functions over plain data and numpy matrices (no ORM).

**Add News** (supplementary section 3.4), for one participant on one platform:

1. Take the posts the platform served them in their last 100 ranking requests, leave out those shorter than 20
   characters, and sample 50 at random (``sample_served``).
2. For each sampled post, find the 5 candidate news posts nearest by cosine similarity (one matrix product over
   L2-normalized embeddings: ``rankers.content.embeddings.nearest``).
3. Score each candidate by how many sampled posts it is among the 5 nearest of.
4. Keep the 50 highest scores (ties at the boundary broken at random) and shuffle them: that is the queue
   (``news_queue``).

**Challenging Stereotypes** (section 3.3, "source-post mismatch"), for one participant:

1. A profile is a vector of positions: the political orientation (1-7, the paper's scale: 7 extremely liberal)
   and the nine baseline issues (1-5, the paper's prompt: trump, media, immigration, abortion, israel, climate,
   racism, military, economy). A post's profile comes from its annotation; a missing position is NaN.
2. *Post similarity*: 1 minus the mean distance (each scaled to 0-1 by its range) over the positions both the
   post and the participant have; NaN when they share none.
3. *Source similarity*: the mean post similarity of the source's posts in the pool.
4. *Mismatch* = 0.9 x max(source similarity x moderate(post similarity), post similarity x moderate(source
   similarity)), with moderate(x) = 1 - 2|x - 0.5| (highest at 0.5): the participant agrees with the source but
   only moderately with the post, or the other way round. Its maximum, 0.9, is the paper's "approximately 0.9".
5. A post's final score is the larger of its mismatch and 1 for an ideologically surprising post (so these are
   served first, as in the paper); posts at or above the arm's ``min_queue_score`` are queued, best first.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

import numpy as np

from rankers.content.embeddings import nearest

SERVED_REQUESTS = 100  # "the last 100 ranking requests"
SAMPLE_SIZE = 50  # "We then sample 50 of these posts randomly"
MIN_CHARS = 20  # "filtering out any post shorter than 20 characters"
NEIGHBOURS = 5  # "the five most similar candidate posts"
QUEUE_SIZE = 50  # "The top 50 highest scoring posts are randomly shuffled and queued"
CHUNK = 2048  # sample rows per matrix product (2048 x 2000 float32 similarities: 16 MB)

ISSUES = ("trump", "media", "immigration", "abortion", "israel", "climate", "racism", "military", "economy")
ORIENTATION = "ideology"  # the participant's key for their self-placement on the paper's 1-7 scale
PROFILE_KEYS = (ORIENTATION, *ISSUES)
# The range of each position, to scale distances to 0..1.
_SPANS = np.array([6.0] + [4.0] * len(ISSUES))
MAX_MISMATCH = 0.9


# --- Add News ---------------------------------------------------------------------------------------------


def sample_served(texts: Mapping[str, str], rng: random.Random, *, size: int = SAMPLE_SIZE) -> list[str]:
    """Step 1: up to ``size`` text hashes, at random, of the served posts with at least 20 characters."""
    long_enough = sorted(digest for digest, text in texts.items() if len(text.strip()) >= MIN_CHARS)
    return rng.sample(long_enough, min(size, len(long_enough)))


def nearest_candidates(samples: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Step 2: for each sample row, the rows of its 5 nearest candidates (matrix products over chunks of samples,
    so a refresh can compute each distinct served text once for every participant who was served it)."""
    if len(samples) == 0 or len(candidates) == 0:
        return np.zeros((len(samples), 0), dtype=np.int64)
    chunks = [nearest(samples[i : i + CHUNK], candidates, NEIGHBOURS)[0] for i in range(0, len(samples), CHUNK)]
    return np.vstack(chunks)


def queue_from_neighbours(neighbours: np.ndarray, candidate_ids: Sequence[str], rng: random.Random) -> list[str]:
    """Steps 3-4: ``neighbours`` holds one participant's samples' nearest candidate rows."""
    if neighbours.size == 0:
        return []
    counts = np.bincount(neighbours.ravel(), minlength=len(candidate_ids))
    near = np.flatnonzero(counts)
    ties = np.array([rng.random() for _ in near])
    best = near[np.lexsort((ties, -counts[near]))][:QUEUE_SIZE]
    queue = [candidate_ids[i] for i in best]
    rng.shuffle(queue)
    return queue


def news_queue(
    samples: np.ndarray, candidate_ids: Sequence[str], candidates: np.ndarray, rng: random.Random
) -> list[str]:
    """Steps 2-4 for one participant: ``samples`` and ``candidates`` hold L2-normalized rows (one per sampled
    post, one per candidate id)."""
    return queue_from_neighbours(nearest_candidates(samples, candidates), candidate_ids, rng)


# --- Challenging Stereotypes ------------------------------------------------------------------------------


def profile(orientation: float | None, opinions: Mapping[str, object] | None) -> np.ndarray:
    """Step 1: a post's or a participant's positions as a vector over ``PROFILE_KEYS`` (NaN: unknown).

    Opinion keys may carry the prompt's ``opinion_`` prefix; values outside their range count as unknown.
    """
    values = {str(k).removeprefix("opinion_"): v for k, v in (opinions or {}).items()}
    vector = np.full(len(PROFILE_KEYS), np.nan)
    if _in_range(orientation, 7):
        vector[0] = float(orientation)  # type: ignore[arg-type]
    for index, issue in enumerate(ISSUES, start=1):
        value = values.get(issue)
        if _in_range(value, 5):
            vector[index] = float(value)  # type: ignore[arg-type]
    return vector


def participant_profile(positions: Mapping[str, object]) -> np.ndarray | None:
    """A participant's baseline positions (``Participant.baseline_issue_positions``), or None without any."""
    vector = profile(positions.get(ORIENTATION) if _in_range(positions.get(ORIENTATION), 7) else None, positions)  # type: ignore[arg-type]
    return None if np.isnan(vector).all() else vector


def _in_range(value: object, top: int) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 1 <= value <= top


def post_similarities(posts: np.ndarray, user: np.ndarray) -> np.ndarray:
    """Step 2 for every post at once (``posts``: one profile per row); NaN where nothing is shared."""
    distances = np.abs(posts - user) / _SPANS
    shared = ~np.isnan(distances)
    counts = shared.sum(axis=1)
    totals = np.where(shared, distances, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, 1.0 - totals / counts, np.nan)


def source_similarities(similarities: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Step 3: each post's source's mean post similarity (over its posts with one), per post; NaN if none."""
    known = ~np.isnan(similarities)
    _, index = np.unique(sources, return_inverse=True)
    sums = np.bincount(index, weights=np.where(known, similarities, 0.0))
    counts = np.bincount(index, weights=known.astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / counts, np.nan)
    return means[index]


def mismatch(post: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Step 4, elementwise; 0 where either similarity is unknown."""

    def moderate(x: np.ndarray) -> np.ndarray:
        return 1.0 - 2.0 * np.abs(x - 0.5)

    score = MAX_MISMATCH * np.maximum(source * moderate(post), post * moderate(source))
    return np.nan_to_num(score, nan=0.0)


def stereotypes_queue(
    candidate_ids: Sequence[str],
    profiles: np.ndarray,
    sources: np.ndarray,
    surprising: np.ndarray,
    user: np.ndarray,
    *,
    min_score: float,
    size: int = 200,
) -> list[str]:
    """Steps 2-5: the ids to queue for one participant, best first (ties: pool order)."""
    if len(candidate_ids) == 0:
        return []
    similarities = post_similarities(profiles, user)
    final = np.maximum(mismatch(similarities, source_similarities(similarities, sources)), surprising.astype(float))
    order = np.argsort(-final, kind="stable")
    return [candidate_ids[i] for i in order[:size] if final[i] >= min_score]
