"""The transformers backend on ONNX Runtime: a tiny BERT built here, exported by the real command, scored by both
runtimes and compared."""

from __future__ import annotations

import json
import shutil
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from rankers.scoring import attributes as A
from rankers.scoring import identity
from rankers.scoring.backends import ScorerUnavailable, build_backend
from rankers.scoring.backends.local_model import TransformersBackend
from rankers.scoring.backends.onnx_model import MANIFEST_FILE, ONNX_DIR
from tests.rankers.tiny_models import save_tiny_bert

LABELS = ["TOXICITY", "INSULT", "REASONING_EXPERIMENTAL"]
WORDS = ["you", "are", "a", "stupid", "idiot", "i", "because", "thank", "the", "council", "voted"]
# Of several lengths, in no order of length: batches are padded to other lengths than the traced example's.
TEXTS = [
    "you are a stupid idiot because the council voted",
    "a",
    "i thank you",
    "the council voted because you are a stupid idiot and i thank the council because it voted",
    "stupid",
]


@pytest.fixture(scope="module")
def exported_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.manual_seed(7)  # the same random weights each run: how far int8 moves them depends on the draw
    directory = save_tiny_bert(tmp_path_factory.mktemp("tiny-onnx"), LABELS, WORDS, initializer_range=0.5)
    out = StringIO()
    call_command("export_scorer_onnx", model_dir=str(directory), stdout=out)
    assert "largest probability difference from torch fp32" in out.getvalue()
    return directory


def all_scores(backend: TransformersBackend) -> list[dict[str, float]]:
    scores = backend.score(TEXTS, [A.TOXICITY, A.INSULT, A.REASONING])
    assert all(s is not None for s in scores)
    return [s for s in scores if s is not None]


@pytest.mark.parametrize("batch_size", [1, 2, 5])
def test_the_onnx_runtime_gives_torchs_scores_at_every_padded_length(exported_dir: Path, batch_size: int) -> None:
    torch_scores = all_scores(TransformersBackend(str(exported_dir), batch_size=batch_size))
    onnx = TransformersBackend(str(exported_dir), batch_size=batch_size, runtime="onnxruntime")

    assert onnx._loaded.model is None  # no torch model behind it
    for from_onnx, from_torch in zip(all_scores(onnx), torch_scores, strict=True):
        assert from_onnx.keys() == from_torch.keys()
        for name, value in from_torch.items():
            assert from_onnx[name] == pytest.approx(value, abs=1e-5), name


def test_the_int8_onnx_graph_scores_close_to_torch_under_its_own_name(exported_dir: Path) -> None:
    torch_backend = TransformersBackend(str(exported_dir))
    int8 = TransformersBackend(str(exported_dir), runtime="onnxruntime", quantize=True)

    assert int8.name == torch_backend.name + ":onnx:int8"  # never served from another runtime's cache entries
    for from_int8, from_torch in zip(all_scores(int8), all_scores(torch_backend), strict=True):
        for name, value in from_torch.items():
            assert from_int8[name] == pytest.approx(value, abs=0.05), name
    manifest = json.loads((exported_dir / ONNX_DIR / MANIFEST_FILE).read_text())
    assert manifest["max_difference_from_torch"]["fp32"] < 1e-4


def test_the_configured_onnx_backend_is_named_as_the_scorer_identity(settings: Any, exported_dir: Path) -> None:
    settings.PRC_SCORER_BACKEND = "transformers"
    settings.PRC_SCORER_MODEL_DIR = str(exported_dir)
    settings.PRC_SCORER_RUNTIME = "onnxruntime"
    for quantize in (False, True):
        settings.PRC_SCORER_QUANTIZE = quantize
        assert build_backend("transformers", settings).name == identity()
    assert identity() == f"transformers:{exported_dir}:onnx:int8"


def test_onnxruntime_without_an_export_stops_the_backend_with_the_command_to_run(tmp_path: Path) -> None:
    directory = save_tiny_bert(tmp_path, LABELS, WORDS)

    with pytest.raises(ScorerUnavailable, match=r"onnx/model\.onnx .* missing: run `python manage\.py export_scorer"):
        TransformersBackend(str(directory), runtime="onnxruntime")


def test_an_export_of_other_weights_stops_the_backend(tmp_path: Path, exported_dir: Path) -> None:
    directory = tmp_path / "model"
    shutil.copytree(exported_dir, directory)
    (tmp_path / "retrained").mkdir()
    save_tiny_bert(tmp_path / "retrained", LABELS, WORDS)  # new random weights, as after training again
    for weights in (tmp_path / "retrained").glob("*.safetensors"):
        shutil.copy(weights, directory / weights.name)

    with pytest.raises(ScorerUnavailable, match="made from other weights"):
        TransformersBackend(str(directory), runtime="onnxruntime", quantize=True)


def test_an_unknown_runtime_stops_the_backend(exported_dir: Path) -> None:
    with pytest.raises(ScorerUnavailable, match="PRC_SCORER_RUNTIME='tensorrt': choose one of torch, onnxruntime"):
        TransformersBackend(str(exported_dir), runtime="tensorrt")


def test_the_export_command_refuses_a_directory_without_a_model(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="not a model directory"):
        call_command("export_scorer_onnx", model_dir=str(tmp_path))
