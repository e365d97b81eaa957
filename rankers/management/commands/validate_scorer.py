"""``manage.py validate_scorer --csv FILE [--backend NAME] [--bins 10] [--calibration] [--timeout 30]``.

Scores a labelled CSV (columns ``text``, ``attribute``, ``label`` in [0, 1]; positive from 0.5) with the
configured scorer backend and prints, per attribute, AUC-ROC, Brier score and expected calibration error in the
form of the paper's Table S12, next to the AUC the paper reports for Perspective. A methods section can then say
which model the arms ran on and how good it is on the study's own labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rankers.scoring.backends import BACKEND_NAMES, ScorerUnavailable, build_backend
from rankers.scoring.quality import LabelFileError, calibration_table, read_labels, table_s12, validate


class SettingsWith:
    """Django settings with a few values replaced, for ``build_backend``."""

    def __init__(self, **values: Any) -> None:
        self._values = values

    def __getattr__(self, name: str) -> Any:
        return self._values[name] if name in self._values else getattr(settings, name)


class Command(BaseCommand):
    help = "Print per-attribute AUC-ROC and calibration of the scorer backend on a labelled CSV (Table S12 form)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--csv", required=True, type=Path, help="Columns text, attribute, label (0 to 1).")
        parser.add_argument("--backend", choices=BACKEND_NAMES, help="Default: PRC_SCORER_BACKEND.")
        parser.add_argument("--bins", type=int, default=10, help="Calibration bins over [0, 1] (default 10).")
        parser.add_argument("--calibration", action="store_true", help="Also print each attribute's bins.")
        parser.add_argument(
            "--timeout", type=float, default=30.0, help="Seconds per llm/http request and per batch (default 30)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            rows = read_labels(options["csv"])
        except (OSError, LabelFileError) as exc:
            raise CommandError(str(exc)) from None
        name = options["backend"] or settings.PRC_SCORER_BACKEND
        timeout = options["timeout"]
        try:
            backend = build_backend(name, SettingsWith(PRC_SCORER_TIMEOUT_S=timeout, PRC_SCORER_DEADLINE_S=timeout))
        except ScorerUnavailable as exc:
            raise CommandError(f"scorer backend {name!r} is unavailable: {exc}") from None
        results = validate(backend, rows, n_bins=options["bins"])
        texts = len({row.text for row in rows})
        title = f"Attributes scored by {backend.name}, validated on {options['csv'].name} ({texts} labelled texts)"
        self.stdout.write(table_s12(results, title))
        if options["calibration"]:
            for result in results:
                self.stdout.write("\n" + calibration_table(result))
        usage = getattr(backend, "usage", None)
        if usage is not None:
            self.stdout.write(
                f"\n{usage.calls} calls, {usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens, "
                f"cost {usage.cost:.4f}"
            )
