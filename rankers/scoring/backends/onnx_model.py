"""A ``transformers`` classifier exported to ONNX, and its ONNX Runtime session (``PRC_SCORER_RUNTIME=onnxruntime``).

``manage.py export_scorer_onnx`` writes ``onnx/model.onnx`` (fp32) and ``onnx/model.int8.onnx`` (ONNX Runtime's
dynamic int8 quantization of the same graph) into the model directory, with ``onnx/export.json``: a digest of the
weights it was exported from and how far its probabilities were from torch's on texts padded to several lengths.
The export refuses to write a graph whose fp32 probabilities differ from torch's by more than ``FP32_TOLERANCE``.

On this machine's AVX2 cores the int8 graph scores a MiniLM-sized classifier at about 2.3 times torch fp32's texts
per CPU-second (torch's own dynamic int8: 1.4 times), with probabilities within about 0.005 of fp32's
(docs/benchmarks.md). Nothing is exported at serving time: a scorer process that finds no export, or one made from
other weights, refuses to start with the command to run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rankers.scoring.backends.base import ScorerUnavailable

ONNX_DIR = "onnx"
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
MANIFEST_FILE = "export.json"
FORMAT = "prc-onnx-scorer/1"
OPSET = 17
# An exported graph computes what torch computes; fp32 rounding alone stays far below this.
FP32_TOLERANCE = 1e-4
# Texts of several lengths, so the check pads batches to other lengths than the example the graph was traced on.
CHECK_TEXTS = (
    "a",
    "thank you for sharing, that is a fair point",
    "you are an idiot and nobody cares what you think, because the council voted again and again without us",
    "what do you think would actually help people in our town?",
)


def weights_digest(model_dir: str | Path) -> str:
    """SHA-256 of the model's weight files, so that an export can tell whether it was made from these weights."""
    digest = hashlib.sha256()
    files = sorted(p for p in Path(model_dir).iterdir() if p.suffix in {".safetensors", ".bin"} and p.is_file())
    for path in files:
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def graph_path(model_dir: str | Path, quantize: bool) -> Path:
    return Path(model_dir, ONNX_DIR, INT8_FILE if quantize else FP32_FILE)


def export(model_dir: str, texts: Sequence[str] = CHECK_TEXTS) -> dict[str, Any]:
    """Export the classifier in ``model_dir`` to ONNX (fp32 and dynamic int8) and write its manifest; returns the
    manifest. Raises ``ValueError`` when the fp32 graph does not reproduce torch's probabilities."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rankers.scoring.backends.local_model import probabilities

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, local_files_only=True).eval()
    names = list(tokenizer.model_input_names)
    example = tokenizer(list(texts[:2]), padding=True, return_tensors="pt")
    out = Path(model_dir, ONNX_DIR)
    out.mkdir(exist_ok=True)
    fp32, int8 = out / FP32_FILE, out / INT8_FILE
    torch.onnx.export(
        _by_name(model, names), tuple(example[n] for n in names), str(fp32), input_names=names,
        output_names=["logits"], dynamic_axes={n: {0: "batch", 1: "tokens"} for n in names} | {"logits": {0: "batch"}},
        dynamo=False, opset_version=OPSET,
    )  # fmt: skip
    # DefaultTensorType: shape inference cannot type every MatMul output of a transformers graph.
    quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, extra_options={"DefaultTensorType": 1})
    softmax = model.config.problem_type == "single_label_classification"
    with torch.inference_mode():
        reference = [probabilities(model(**tokenizer([t], return_tensors="pt")).logits.numpy(), softmax)[0]
                     for t in texts]  # fmt: skip
    gaps = {}
    for label, path in (("fp32", fp32), ("int8", int8)):
        run = session_runner(path, names, threads=1)
        alone = [probabilities(run(dict(tokenizer([t], return_tensors="np"))), softmax)[0] for t in texts]
        padded = probabilities(run(dict(tokenizer(list(texts), padding=True, return_tensors="np"))), softmax)
        gaps[label] = float(max(np.abs(np.stack(alone) - reference).max(), np.abs(padded - reference).max()))
    if gaps["fp32"] > FP32_TOLERANCE:
        fp32.unlink()
        int8.unlink()
        raise ValueError(f"the ONNX graph's probabilities differ from torch's by {gaps['fp32']:.2g}; not exported")
    manifest = {"format": FORMAT, "weights_sha256": weights_digest(model_dir), "opset": OPSET, "inputs": names,
                "max_difference_from_torch": gaps}  # fmt: skip
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def _by_name(model: Any, names: list[str]) -> Any:
    """The model as a module that takes its inputs in ``names``' order and returns logits: the tracer passes them
    by position, and a model's ``forward`` takes them in another order than the tokenizer's (BERT's is ids, mask,
    token types; the tokenizer's ids, token types, mask), which silently swaps the mask and the token types."""
    import torch

    class ByName(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: Any) -> Any:
            return self.model(**dict(zip(names, tensors, strict=True))).logits

    return ByName().eval()  # a new module is in training mode, and the exporter restores that mode on the model


def session_runner(path: Path, names: Sequence[str], threads: int) -> Callable[[dict[str, Any]], np.ndarray]:
    """A function from tokenizer output (numpy) to logits, on an ONNX Runtime session of ``threads`` threads."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(encoded: dict[str, Any]) -> np.ndarray:
        return np.asarray(session.run(None, {n: np.asarray(encoded[n], dtype=np.int64) for n in names})[0])

    return run


def load_runner(model_dir: str, quantize: bool, threads: int) -> Callable[[dict[str, Any]], np.ndarray]:
    """The exported graph of ``model_dir`` as a runner; ``ScorerUnavailable`` when it is missing or stale."""
    path = graph_path(model_dir, quantize)
    manifest_path = Path(model_dir, ONNX_DIR, MANIFEST_FILE)
    command = f"python manage.py export_scorer_onnx --model-dir {model_dir}"
    if not path.is_file() or not manifest_path.is_file():
        raise ScorerUnavailable(
            f"PRC_SCORER_RUNTIME=onnxruntime needs {path} and {manifest_path}, which are missing: run `{command}`"
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except ValueError as exc:
        raise ScorerUnavailable(f"{manifest_path} is not an export manifest ({exc}): run `{command}`") from exc
    if manifest.get("weights_sha256") != weights_digest(model_dir):
        raise ScorerUnavailable(
            f"the ONNX export in {path.parent} was made from other weights than {model_dir}'s: run `{command}`"
        )
    try:
        return session_runner(path, manifest["inputs"], threads)
    except Exception as exc:
        raise ScorerUnavailable(f"ONNX Runtime cannot load {path}: {exc}") from exc
