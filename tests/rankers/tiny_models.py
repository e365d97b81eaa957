"""Tiny transformers classifiers built and saved by the tests, so the real loading code runs without weights."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def save_tiny_bert(
    directory: Path,
    labels: Sequence[str],
    words: Sequence[str],
    problem_type: str = "multi_label_classification",
    initializer_range: float = 0.02,
) -> Path:
    """A one-layer BERT sequence classifier with ``labels`` and a vocabulary of ``words``, saved in ``directory``.
    Its weights are random: a larger ``initializer_range`` makes its scores differ more from text to text."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    vocabulary = [*SPECIAL_TOKENS, *(w for w in words if w not in SPECIAL_TOKENS)]
    (directory / "vocab.txt").write_text("\n".join(vocabulary) + "\n")
    config = BertConfig(
        vocab_size=len(vocabulary),
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=64,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        problem_type=problem_type,
        initializer_range=initializer_range,
    )
    BertForSequenceClassification(config).save_pretrained(directory)
    BertTokenizer(vocab_file=str(directory / "vocab.txt")).save_pretrained(directory)
    return directory
