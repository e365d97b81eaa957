"""``manage.py export_scorer_onnx [--model-dir DIR]``: export the ``transformers`` scorer's model for ONNX Runtime.

Writes ``DIR/onnx/model.onnx`` (fp32), ``DIR/onnx/model.int8.onnx`` (dynamic int8) and ``DIR/onnx/export.json``,
after checking that the fp32 graph gives torch's probabilities on texts padded to several lengths. Run it once per
model (again after the weights change: a scorer refuses a stale export); then set ``PRC_SCORER_RUNTIME=onnxruntime``
(and ``PRC_SCORER_QUANTIZE=true`` for the int8 graph).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rankers.scoring.backends.onnx_model import ONNX_DIR, export


class Command(BaseCommand):
    help = "Export the transformers scorer's model to ONNX (fp32 and int8) for PRC_SCORER_RUNTIME=onnxruntime."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model-dir", default=None, help="Default: PRC_SCORER_MODEL_DIR.")

    def handle(self, *args: Any, **options: Any) -> None:
        model_dir = options["model_dir"] or settings.PRC_SCORER_MODEL_DIR
        if not model_dir or not Path(model_dir, "config.json").is_file():
            raise CommandError(f"{model_dir!r} is not a model directory (no config.json); pass --model-dir")
        try:
            manifest = export(model_dir)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        gaps = manifest["max_difference_from_torch"]
        self.stdout.write(
            f"exported {model_dir} to {Path(model_dir, ONNX_DIR)}: largest probability difference from torch "
            f"fp32 {gaps['fp32']:.2g} (fp32 graph), {gaps['int8']:.2g} (int8 graph)"
        )
