"""``manage.py validate_scorer`` on a hand-made labelled set, scored by a Perspective-compatible loopback server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.fake_http import serving

# The fake scorer's answer for each text; "broken" gets a server error.
SCORES = {
    "a": 0.9, "b": 0.8, "c": 0.7, "d": 0.3, "e": 0.2, "f": 0.1,  # reasoning
    "g": 0.9, "h": 0.7, "i": 0.3, "j": 0.1,  # insult
}  # fmt: skip
LABELS = """text,attribute,label
a,reasoning,1
b,REASONING_EXPERIMENTAL,0
c,Reasoning,1
d,Reasoning,0
e,Reasoning,1
f,Reasoning,0.2
g,Insult,1
h,Insult,0.8
i,Insult,0
j,Insult,0
broken,Insult,1
"""


def fake_scorer(path: str, body: bytes) -> tuple[int, bytes]:
    request = json.loads(body)
    text = request["comment"]["text"]
    if text not in SCORES:
        return 500, b"{}"
    value = {"summaryScore": {"value": SCORES[text]}}
    return 200, json.dumps({"attributeScores": dict.fromkeys(request["requestedAttributes"], value)}).encode()


@pytest.fixture
def labels(tmp_path: Path) -> Path:
    path = tmp_path / "labels.csv"
    path.write_text(LABELS)
    return path


@pytest.fixture
def scorer_url(settings: object) -> Iterator[str]:
    with serving(fake_scorer) as url:
        settings.PRC_SCORER_BACKEND = "http"  # type: ignore[attr-defined]
        settings.PRC_SCORER_HTTP_URL = f"{url}/v1alpha1/comments:analyze"  # type: ignore[attr-defined]
        yield url


def validate(*args: str) -> str:
    out = StringIO()
    call_command("validate_scorer", *args, stdout=out)
    return out.getvalue()


def test_validation_prints_each_attributes_auc_and_calibration_in_the_form_of_table_s12(
    labels: Path, scorer_url: str
) -> None:
    output = validate("--csv", str(labels), "--calibration")

    assert f"Attributes scored by http:{scorer_url}/v1alpha1/comments:analyze" in output
    assert "| Attribute | Definition | AUC-ROC | paper's AUC-ROC | Brier | ECE | n | positives | unscored |" in output
    # Reasoning: positives 0.9, 0.7, 0.2 against negatives 0.8, 0.3, 0.1 win 6 of 9 pairs; Brier 1.48 / 6;
    # every score in its own bin, so ECE is the mean gap |score - outcome| = 2.4 / 6.
    assert "| Reasoning | Makes specific or well-reasoned points" in output
    assert "| 0.67 | 0.87 | 0.25 | 0.40 | 6 | 3 | 0 |" in output
    # Insult: a perfect ranking; Brier (0.01 + 0.09 + 0.09 + 0.01) / 4; ECE 0.8 / 4; the broken text is unscored.
    assert "| Insult | Insulting, inflammatory" in output
    assert "| 1.00 | 0.97 | 0.05 | 0.20 | 4 | 2 | 1 |" in output
    assert output.index("| Reasoning |") < output.index("| Insult |")  # the paper's order
    assert "Calibration of Insult:\n| scores | n | mean score | positive share |" in output
    assert "| 0.7-0.8 | 1 | 0.70 | 1.00 |" in output


def test_validation_refuses_a_scorer_that_cannot_be_built(labels: Path, settings: object) -> None:
    settings.PRC_SCORER_MODEL_DIR = "/nonexistent/model"  # type: ignore[attr-defined]

    with pytest.raises(CommandError, match=r"scorer backend 'transformers' is unavailable: .*has no config.json"):
        validate("--csv", str(labels), "--backend", "transformers")


def test_validation_refuses_a_bad_label_file_naming_the_line(tmp_path: Path, scorer_url: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("text,attribute,label\na,Reasoning,yes\n")

    with pytest.raises(CommandError, match=r"labels.csv:2: label 'yes' is not a number"):
        validate("--csv", str(path))
