"""Personalization (paper 3.3 and 3.4) as pure functions, and the refresh of pools and queues on PostgreSQL:
what goes into a pool, whose queue is personalized and how, and that a refresh run twice gives the same rows."""

from __future__ import annotations

import datetime as dt
import io
import random
from typing import Any

import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from participants.models import Participant
from rankers.content import personalization as P
from rankers.content import queues
from rankers.content.models import CandidatePool, CandidatePost, ContentSource, ParticipantQueue
from rankers.content.synthetic import NewPost, store_embeddings, store_posts
from rankers.content.tasks import refresh_queues
from rankers.management.commands.enroll_test_participant import create_test_participant
from rankers.models import ContentItem, Slate, text_hash
from surveys.models import Invitation
from surveys.services import survey_token
from tests.factories import ArmFactory, StudyFactory
from tests.surveys.conftest import answer_all, make_wave

DIM = 8


def unit(*components: float) -> np.ndarray:
    vector = np.zeros(DIM, dtype=np.float32)
    vector[: len(components)] = components
    return vector / np.linalg.norm(vector)


# --- Add News, pure ------------------------------------------------------------------------------------------


def test_sampling_leaves_out_short_posts_and_takes_at_most_fifty():
    texts = {f"h{i}": "x" * (19 if i % 2 else 25) for i in range(200)}
    sample = P.sample_served(texts, random.Random(1))
    assert len(sample) == 50
    assert all(len(texts[h]) >= 20 for h in sample)
    assert P.sample_served({"a": "too short"}, random.Random(1)) == []


def test_news_queue_scores_candidates_by_how_many_samples_they_are_near():
    axis = [unit(*([0.0] * i + [1.0])) for i in range(DIM)]
    # Candidates 0..7 lie on the axes; samples all point near axis 0, a few also near axis 1.
    candidates = np.vstack(axis)
    samples = np.vstack([unit(1.0, 0.1 * i) for i in range(10)])
    ids = [f"prc-{i}" for i in range(DIM)]
    queue = P.news_queue(samples, ids, candidates, random.Random(3))
    assert len(queue) == 5  # every candidate among some sample's 5 nearest, and only those
    assert set(queue) <= set(ids)
    counts = np.bincount(np.argsort(-(samples @ candidates.T), axis=1)[:, :5].ravel(), minlength=DIM)
    assert set(queue) == {ids[i] for i in np.flatnonzero(counts)}


def test_news_queue_keeps_the_fifty_most_often_near_and_shuffles_them():
    rng = np.random.default_rng(0)
    candidates = rng.normal(size=(400, DIM)).astype(np.float32)
    candidates /= np.linalg.norm(candidates, axis=1, keepdims=True)
    samples = candidates[:60] + 0.01  # each sample right next to one candidate
    samples /= np.linalg.norm(samples, axis=1, keepdims=True)
    ids = [f"prc-{i}" for i in range(400)]
    first = P.news_queue(samples, ids, candidates, random.Random(9))
    assert len(first) == 50
    neighbours = np.argsort(-(samples @ candidates.T), axis=1)[:, :5]
    counts = np.bincount(neighbours.ravel(), minlength=400)
    threshold = sorted(counts, reverse=True)[49]
    assert all(counts[ids.index(i)] >= threshold for i in first)
    assert first != sorted(first, key=lambda i: -counts[ids.index(i)])  # shuffled, not in score order
    assert P.news_queue(samples, ids, candidates, random.Random(9)) == first


def test_news_queue_of_nothing_is_empty():
    assert P.news_queue(np.zeros((0, DIM)), ["prc-1"], np.ones((1, DIM)), random.Random(1)) == []


# --- Challenging Stereotypes, pure ------------------------------------------------------------------------


def test_post_similarity_counts_only_shared_positions_scaled_to_their_range():
    user = P.profile(7, {"trump": 1, "immigration": 5})
    posts = np.vstack([P.profile(1, {"trump": 5}), P.profile(7, {"opinion_immigration": 5}), P.profile(None, {})])
    similarities = P.post_similarities(posts, user)
    assert similarities[0] == pytest.approx(0.0)
    assert similarities[1] == pytest.approx(1.0)
    assert np.isnan(similarities[2])


def test_source_similarity_is_the_mean_over_the_sources_posts():
    similarities = np.array([1.0, 0.5, np.nan, 0.2])
    sources = np.array([1, 1, 1, 2])
    assert P.source_similarities(similarities, sources).tolist() == pytest.approx([0.75, 0.75, 0.75, 0.2])


def test_mismatch_peaks_when_the_user_agrees_with_the_source_but_only_half_with_the_post():
    assert P.mismatch(np.array([0.5]), np.array([1.0]))[0] == pytest.approx(0.9)
    assert P.mismatch(np.array([1.0]), np.array([0.5]))[0] == pytest.approx(0.9)
    assert P.mismatch(np.array([1.0]), np.array([1.0]))[0] == pytest.approx(0.0)  # agrees with both: no surprise
    assert P.mismatch(np.array([np.nan]), np.array([1.0]))[0] == 0.0


def test_surprising_posts_come_first_then_mismatch_above_the_threshold():
    user = P.profile(6, {"trump": 1})
    ids = ["agree-source", "surprising", "agree-all", "unknown"]
    profiles = np.vstack(
        [P.profile(4, {"trump": 3}), P.profile(1, {}), P.profile(6, {"trump": 1}), P.profile(None, {})]
    )
    sources = np.array([1, 2, 3, 4])
    surprising = np.array([False, True, False, False])
    # Source 1's other post agrees fully with the user, so the source agrees and this post half does.
    ids2 = [*ids, "source-1-other"]
    profiles2 = np.vstack([profiles, P.profile(6, {"trump": 1})])
    sources2 = np.array([*sources, 1])
    queue = P.stereotypes_queue(ids2, profiles2, sources2, np.array([*surprising, False]), user, min_score=0.5)
    assert queue[0] == "surprising"
    assert "agree-source" in queue
    assert "agree-all" not in queue
    assert "unknown" not in queue


def test_a_participant_without_positions_has_no_profile():
    assert P.participant_profile({}) is None
    assert P.participant_profile({"ideology": "very liberal", "trump": 9}) is None
    assert P.participant_profile({"climate": 4}) is not None


# --- refresh on PostgreSQL ---------------------------------------------------------------------------------


def make_source(name: str, lean: str, arms: list[str]) -> ContentSource:
    return ContentSource.objects.create(
        name=name, platform="reddit", kind="news_outlet", connector="rss",
        location=f"https://{name}.example.org/feed", lean=lean, arms=arms,
    )  # fmt: skip


def make_post(source: ContentSource, number: int, vector: np.ndarray, **annotation: Any) -> CandidatePost:
    post = NewPost(
        post_id=f"t3_{number}", url=f"https://{source.name}.example.org/{number}", title=f"Story {number}",
        text=f"The text of story number {number}.", created_at=timezone.now() - dt.timedelta(hours=number),
        annotation={"llm_model": "m", "prompt_version": "v2", **annotation} if annotation else None, vector=vector,
    )  # fmt: skip
    [stored] = store_posts(source, [post], model="test")
    return stored


def serve_history(participant: Participant, texts_and_vectors: list[tuple[str, np.ndarray]]) -> None:
    hashes = []
    for i, (text, vector) in enumerate(texts_and_vectors):
        digest = text_hash(text)
        ContentItem.objects.create(platform="reddit", item_id=f"seen{i}", text_hash=digest, text=text)
        store_embeddings({digest: vector}, model="test")
        hashes.append(digest)
    Slate.objects.create(
        study_id=participant.study_id, served_at=timezone.now() - dt.timedelta(hours=1),
        participant_id=participant.public_id, arm="add_news", effective_arm="add_news", ranker_key="add_news",
        platform="reddit", content_type="post", original_ids=[f"seen{i}" for i in range(len(hashes))],
        original_hashes=hashes, returned_ids=[], served_ms=500.0,
    )  # fmt: skip


@pytest.fixture
def arms() -> dict[str, Any]:
    study = StudyFactory()
    return {key: ArmFactory(study=study, slug=key.replace("_", "-"), ranker_key=key) for key in
            ("add_news", "challenging_stereotypes")}  # fmt: skip


def enrolled(arm: Any, **fields: Any) -> Participant:
    participant, _ = create_test_participant(arm=arm, past_baseline=True, is_test=False)
    if fields:
        Participant.objects.filter(pk=participant.pk).update(**fields)
    return participant


@pytest.mark.django_db
def test_add_news_queue_holds_the_news_nearest_to_what_the_participant_was_served(arms: dict[str, Any]) -> None:
    left, right = make_source("lefty", "left", ["add_news"]), make_source("righty", "right", ["add_news"])
    make_source("unrated", "", ["add_news"])
    sports = [make_post(left, i, unit(1.0, 0.05 * i)) for i in range(1, 4)]
    politics = [make_post(right, i, unit(0.0, 0.0, 1.0, 0.05 * i)) for i in range(4, 12)]
    reader = enrolled(arms["add_news"])
    serve_history(reader, [(f"A long enough post about sports, number {i}.", unit(1.0, 0.02 * i)) for i in range(8)])
    newcomer = enrolled(arms["add_news"])

    [result] = [r for r in queues.refresh_platform("reddit") if r.ranker_key == "add_news"]

    pool = CandidatePool.objects.get(ranker_key="add_news", platform="reddit")
    assert pool.size == 11
    assert len(pool.default_ids) == 11
    assert pool.newest_post_at == max(p.created_at for p in [*sports, *politics] if p.created_at)
    queue = ParticipantQueue.objects.get(participant_id=reader.public_id, ranker_key="add_news")
    sports_ids = {f"prc-{p.pk}" for p in sports}
    assert sports_ids <= set(queue.candidate_ids)
    assert queue.personalized
    assert (result.queues, result.personalized) == (2, 1)
    fresh = ParticipantQueue.objects.get(participant_id=newcomer.public_id, ranker_key="add_news")
    assert (fresh.candidate_ids, fresh.personalized) == ([], False)


@pytest.mark.django_db
def test_challenging_stereotypes_queue_follows_the_participants_baseline_positions(arms: dict[str, Any]) -> None:
    source = make_source("mixed", "centre", ["challenging_stereotypes"])
    good = dict(quality={"is_nsfw": False, "is_niche": False, "is_frivolous": False, "is_outrage": False,
                         "is_conspiratorial": False, "is_pessimistic": False, "is_sarcastic": False})  # fmt: skip
    surprising = make_post(source, 1, unit(1.0), ideologically_surprising=True, political_orientation=4, **good)
    agreeing = make_post(source, 2, unit(1.0), political_orientation=3, issue_opinions={"trump": 5}, **good)
    half = make_post(source, 3, unit(1.0), political_orientation=3, issue_opinions={"opinion_trump": 3}, **good)
    nsfw = make_post(source, 4, unit(1.0), ideologically_surprising=True, quality={**good["quality"], "is_nsfw": True})
    make_post(make_source("other", "right", []), 5, unit(1.0), ideologically_surprising=True, **good)
    # Stored orientations run 1 (extremely liberal) to 7; on the paper's scale the agreeing post is 3, like the
    # participant (slightly conservative), and favours Trump as they do: similarity 1 with the post and 0.81
    # with the source, no mismatch. The half post (paper 5, neutral on Trump) scores 0.9 x 0.81 x 0.83 = 0.60.
    agreeing_user = enrolled(arms["challenging_stereotypes"], baseline_issue_positions={"ideology": 3, "trump": 5})
    no_baseline = enrolled(arms["challenging_stereotypes"])

    queues.refresh_platform("reddit")

    pool = CandidatePool.objects.get(ranker_key="challenging_stereotypes", platform="reddit")
    assert pool.size == 4  # the source not drawing for this arm stays out
    assert pool.default_ids == [f"prc-{surprising.pk}", f"prc-{nsfw.pk}"]  # the surprising ones, newest first
    queue = ParticipantQueue.objects.get(participant_id=agreeing_user.public_id)
    assert queue.personalized
    assert queue.candidate_ids[0] == f"prc-{surprising.pk}"
    assert f"prc-{half.pk}" in queue.candidate_ids
    assert f"prc-{agreeing.pk}" not in queue.candidate_ids  # agrees with source and post: no mismatch
    assert not ParticipantQueue.objects.get(participant_id=no_baseline.public_id).personalized


@pytest.mark.django_db
def test_refreshing_twice_gives_the_same_pools_and_queues(arms: dict[str, Any]) -> None:
    source = make_source("news", "centre", ["add_news", "diverse_approval"])
    for i in range(1, 30):
        make_post(source, i, unit(1.0, 0.1 * i, 0.01 * i), civic=0.9, approval_republican=4, approval_democrat=3)
    reader = enrolled(arms["add_news"])
    serve_history(reader, [(f"A long enough served post number {i}.", unit(1.0, 0.1 * i)) for i in range(60)])

    refresh_queues("reddit")
    first = {(q.participant_id, q.ranker_key): q.candidate_ids for q in ParticipantQueue.objects.all()}
    pools = {(p.ranker_key, p.platform): (p.candidates, p.default_ids) for p in CandidatePool.objects.all()}
    call_command("refresh_queues", "--platform", "reddit", stdout=io.StringIO())

    assert {(q.participant_id, q.ranker_key): q.candidate_ids for q in ParticipantQueue.objects.all()} == first
    assert {(p.ranker_key, p.platform): (p.candidates, p.default_ids) for p in CandidatePool.objects.all()} == pools
    assert 0 < len(first[(reader.public_id, "add_news")]) <= 29
    assert ParticipantQueue.objects.count() == 1
    assert CandidatePool.objects.get(ranker_key="diverse_approval").size == 29


@pytest.mark.django_db
def test_beat_refreshes_every_platforms_queues_through_the_registered_task() -> None:
    from prc_site.celery import app

    app.loader.import_default_modules()
    entries = [v for k, v in settings.CELERY_BEAT_SCHEDULE.items() if k.startswith("rankers.content.refresh_queues")]
    assert sorted(entry["args"][0] for entry in entries) == ["facebook", "reddit", "twitter"]  # type: ignore[index]
    assert {entry["task"] for entry in entries} == {"rankers.content.tasks.refresh_queues"}
    assert "rankers.content.tasks.refresh_queues" in app.tasks
    assert all(entry["schedule"] == settings.PRC_QUEUE_REFRESH_S for entry in entries)


@pytest.mark.django_db
def test_answering_the_baseline_survey_personalizes_the_challenging_stereotypes_queue(
    arms: dict[str, Any], client: Client
) -> None:
    source = make_source("mixed", "centre", ["challenging_stereotypes"])
    good = {"is_nsfw": False, "is_niche": False, "is_frivolous": False, "is_outrage": False,
            "is_conspiratorial": False, "is_pessimistic": False, "is_sarcastic": False}  # fmt: skip
    # Stored orientation 6 is conservative (2 on the paper's scale), like the participant's answer below.
    make_post(source, 1, unit(1.0), political_orientation=6, issue_opinions={"trump": 5}, quality=good)
    half = make_post(source, 2, unit(1.0), political_orientation=4, issue_opinions={"trump": 3}, quality=good)
    participant = enrolled(arms["challenging_stereotypes"])
    call_command("load_instruments", stdout=io.StringIO())
    wave = make_wave(participant.study, "baseline", target="consented")
    assert participant.consented_at is not None
    opens, closes = wave.window_for(participant.consented_at)
    invitation = Invitation.objects.create(participant=participant, wave=wave, opens_at=opens, closes_at=closes)
    refresh_queues("reddit")
    assert not ParticipantQueue.objects.get(participant_id=participant.public_id).personalized

    # Conservative (6 of 7 on the survey's scale) and highly favourable to Trump; the other issues left at the
    # first answer, which no post here is rated on.
    answer_all(client, f"/survey/{survey_token(invitation)}/", {"ideology": "6", "issue_trump": "5"})
    refresh_queues("reddit")

    participant.refresh_from_db()
    assert participant.baseline_issue_positions["ideology"] == 2
    assert participant.baseline_issue_positions["trump"] == 5
    queue = ParticipantQueue.objects.get(participant_id=participant.public_id)
    assert queue.personalized
    # They agree with the source (mean similarity 0.79) and half with the moderate post (0.58): mismatch
    # 0.9 x 0.79 x 0.83 = 0.59, over the 0.5 threshold. The post they fully agree with scores 0.38 and stays out.
    assert queue.candidate_ids == [f"prc-{half.pk}"]
