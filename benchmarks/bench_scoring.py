"""Time attribute scoring and the bridging rankers on 50-item slates.

    python benchmarks/bench_scoring.py [--slates 200] [--backend baseline]

"cold" slates have 50 texts never seen before (every text goes to the backend); "warm" slates repeat a scored
slate (every text is a cache hit). Backends other than baseline read their settings from the environment.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prc_site.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from rankers.plugins import RankContext, SlateItem, get_ranker  # noqa: E402
from rankers.plugins.bridging import BRIDGING_DOWNRANK_TOXIC_WEIGHTS  # noqa: E402
from rankers.scoring import configure, get_cache, score_items, warm_up  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slates", type=int, default=200)
    parser.add_argument("--backend", default=None, help="override PRC_SCORER_BACKEND")
    args = parser.parse_args()
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
