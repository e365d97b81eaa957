"""Sentence embeddings stored once per text (installed MiniLM, offline) and the vectorized nearest neighbours."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rankers.content.embeddings import embedding_matrix, ensure_embeddings, from_bytes, nearest, to_bytes
from rankers.content.models import TextEmbedding
from rankers.models import text_hash

TEXTS = {
    text_hash("The Senate passed the budget bill late on Friday.", "Budget"): "Senate passes the budget bill",
    text_hash("Congress approves a new spending package.", ""): "Congress approves a new spending package",
    text_hash("Knead the dough for ten minutes, then let it rise.", ""): "Knead the dough, then let it rise",
}


@pytest.mark.django_db
def test_each_text_is_embedded_once_as_a_normalized_float32_vector() -> None:
    assert ensure_embeddings(TEXTS) == 3
    assert ensure_embeddings(TEXTS) == 0  # run twice: nothing recomputed, nothing duplicated

    rows = list(TextEmbedding.objects.all())
    assert len(rows) == 3
    vector = from_bytes(rows[0].vector)
    assert vector.dtype == np.dtype("<f4")
    assert vector.shape == (384,)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    assert {row.model for row in rows} == {"all-MiniLM-L6-v2"}


@pytest.mark.django_db
def test_the_matrix_keeps_the_order_asked_and_leaves_out_texts_without_an_embedding() -> None:
    ensure_embeddings(TEXTS)
    hashes = list(TEXTS)

    found, matrix = embedding_matrix([hashes[2], "0" * 64, hashes[0]])

    assert found == [hashes[2], hashes[0]]
    assert matrix.dtype == np.float32
    assert matrix.shape == (2, 384)
    stored = from_bytes(TextEmbedding.objects.get(pk=hashes[2]).vector)
    assert np.array_equal(matrix[0], stored)
    assert embedding_matrix(["f" * 64])[1].shape == (0, 0)


@pytest.mark.django_db
def test_a_text_is_nearest_to_one_on_the_same_subject() -> None:
    ensure_embeddings(TEXTS)
    budget, spending, dough = list(TEXTS)
    _, candidates = embedding_matrix([spending, dough])
    _, query = embedding_matrix([budget])

    indices, similarities = nearest(query, candidates, k=2)

    assert indices.tolist() == [[0, 1]]
    assert similarities[0, 0] > similarities[0, 1]


def test_stored_vectors_are_normalized_even_when_the_encoder_gave_a_longer_one() -> None:
    assert np.linalg.norm(from_bytes(to_bytes(np.array([3.0, 4.0])))) == pytest.approx(1.0)


def unit_rows(seed: int, n: int, d: int) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 8), st.integers(1, 40), st.integers(1, 12))
def test_nearest_agrees_with_sorting_every_similarity(seed: int, n_queries: int, n_candidates: int, k: int) -> None:
    queries, candidates = unit_rows(seed, n_queries, 16), unit_rows(seed + 1, n_candidates, 16)

    indices, similarities = nearest(queries, candidates, k)

    brute = np.array([[float(q @ c) for c in candidates] for q in queries])
    expected = -np.sort(-brute, axis=1)[:, : min(k, n_candidates)]
    assert indices.shape == (n_queries, min(k, n_candidates))
    assert np.allclose(similarities, expected, atol=1e-5)
    assert np.allclose(np.take_along_axis(brute, indices, axis=1), expected, atol=1e-5)


def test_nearest_of_nothing_is_empty() -> None:
    indices, similarities = nearest(unit_rows(0, 3, 4), np.zeros((0, 4), dtype=np.float32), k=5)
    assert indices.shape == similarities.shape == (3, 0)
