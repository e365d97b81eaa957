"""The inserting arms: ranker time on 50-post slates served from precomputed pools and queues, and the time a
queue refresh takes for many participants.

    python benchmarks/inserting_bench.py                      # 2,000 slates per ranker, 10,000 participants
    python benchmarks/inserting_bench.py --slates 500 --participants 1000

Runs on its own embedded PostgreSQL (``PRC_DATA_DIR``, default /tmp/prc-bench-inserting), migrated here.

**Ranker time.** For each inserting ranker, a pool of ``PRC_CONTENT_POOL_SIZE`` (2,000) fresh, annotated
candidates and one participant queue are stored; each of ``--slates`` requests then (1) reads the candidates as
``/rank`` does (``inventory.load``: the process's pool copy, and one query for the queue and the posts shown
in the last 48-72 h, against a slate log holding 100 earlier slates of this participant), and (2) runs the
ranker on a 50-post slate with civic scores. Ranker time on ``/rank`` is (1) + (2) for Add News; for the other two
(1) overlaps the wait for scores, so (1) + (2) is an upper bound.

**Queue refresh.** ``--participants`` participants in each queued arm on one platform, each with 5 earlier slates
of 50 posts drawn from 20,000 served posts; every text (served and candidate) has a stored 384-value embedding
(random, normalized: embedding is the scorer workers' work and is measured by the scoring benchmarks). Times
``queues.add_news_queues`` (history query, sampling, nearest neighbours, the top 50) and
``queues.stereotypes_queues`` (profiles and mismatch against random baseline positions) and ``save_queues``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PRC_DATA_DIR", "/tmp/prc-bench-inserting")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prc_site.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_DEBUG", "false")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from prc_site.lib import asyncdb  # noqa: E402
from prc_site.lib.embedded import start_configured, stop_postgres, stop_redis  # noqa: E402
from rankers.content import inventory, queues  # noqa: E402
from rankers.content.inventory import candidate_row  # noqa: E402
from rankers.content.models import CandidatePool, ContentSource, ParticipantQueue  # noqa: E402
from rankers.content.synthetic import NewPost, store_embeddings, store_posts  # noqa: E402
from rankers.models import ContentItem, Slate  # noqa: E402
from rankers.plugins import RankContext, SlateItem, get_ranker  # noqa: E402
from rankers.plugins import inserting as ins  # noqa: E402
from rankers.plugins.base import Candidate  # noqa: E402
from rankers.scoring import attributes as A  # noqa: E402

PLATFORM = "reddit"
DIM = 384
LEANS = ("left", "centre", "right")
QUALITY = {
    "is_nsfw": 0.0, "is_niche": 0.1, "is_frivolous": 0.1, "is_outrage": 0.2, "is_conspiratorial": 0.0,
    "is_pessimistic": 0.1, "is_sarcastic": 0.0, "is_logistical": 0.0, "has_enough_context": 1.0,
}  # fmt: skip


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "mean": round(statistics.fmean(values), 3),
        "p50": round(pct(values, 0.5), 3),
        "p95": round(pct(values, 0.95), 3),
        "p99": round(pct(values, 0.99), 3),
        "max": round(max(values), 3),
    }


def candidates(n: int, now: dt.datetime, rng: random.Random) -> list[Candidate]:
    return [
        Candidate(
            id=f"prc-{i}",
            url=f"https://news.example.org/story/{i}",
            source_id=i % 95,
            lean=LEANS[i % 3],
            posted_at=now - dt.timedelta(hours=rng.uniform(0, 20)),
            post_id=f"t3_c{i}",
            annotation_version="m/v1",
            civic=rng.uniform(0.4, 1.0),
            approval_republican=rng.uniform(2.5, 5),
            approval_democrat=rng.uniform(2.5, 5),
            national_interest=rng.random() < 0.8,
            political_orientation=rng.uniform(2.5, 5.5),
            ideologically_surprising=rng.random() < 0.3,
            quality=QUALITY,
        )
        for i in range(n)
    ]


def store_serving_fixture(pool: list[Candidate], participant: str, now: dt.datetime) -> None:
    for ranker_key in ins.DEFAULTS:
        CandidatePool.objects.update_or_create(
            ranker_key=ranker_key, platform=PLATFORM,
            defaults={"built_at": now, "newest_post_at": max(c.posted_at for c in pool if c.posted_at),
                      "candidates": [candidate_row(c) for c in pool], "default_ids": [c.id for c in pool],
                      "size": len(pool)},
        )  # fmt: skip
        ParticipantQueue.objects.update_or_create(
            participant_id=participant, ranker_key=ranker_key, platform=PLATFORM,
            defaults={"candidate_ids": [c.id for c in pool[:200]]},
        )  # fmt: skip
    Slate.objects.bulk_create(
        Slate(
            study_id=1,
            served_at=now - dt.timedelta(minutes=20 * k),
            participant_id=participant,
            arm="a",
            effective_arm="a",
            ranker_key="add_news",
            platform=PLATFORM,
            content_type="post",
            served_ms=500.0,
            original_ids=[f"t3_{k}_{j}" for j in range(50)],
            added_ids=[f"prc-{1000 + 8 * k + j}" for j in range(8)],
        )
        for k in range(100)
    )


async def time_rankers(n_slates: int, participant: str, now: dt.datetime, rng: random.Random) -> dict[str, object]:
    results: dict[str, object] = {}
    for ranker_key in ins.DEFAULTS:
        ranker = get_ranker(ranker_key)
        cold = time.perf_counter()
        await inventory.pool_for(ranker_key, PLATFORM)  # a web process's first read of the pool (then cached)
        cold_ms = (time.perf_counter() - cold) * 1000
        loads, ranks, totals, inserted = [], [], [], []
        for request in range(n_slates):
            items = [SlateItem(f"t3_{request}_{j}", f"A post on the home feed, number {j}.") for j in range(50)]
            scores = {item.id: {A.CIVIC: rng.random()} for item in items}
            started = time.perf_counter()
            loaded = await inventory.load(
                ranker_key=ranker_key, platform=PLATFORM, participant_id=participant, now=now,
                shown_window=ins.shown_window(ranker_key, {}),
            )  # fmt: skip
            loaded_at = time.perf_counter()
            context = RankContext(
                platform=PLATFORM, content_type="post", user_id=participant, now=now + dt.timedelta(seconds=request),
                scores=scores, candidates=loaded.candidates, shown=loaded.shown,
                inventory_newest_at=loaded.newest_at, page_url="https://www.reddit.com/",
            )  # fmt: skip
            result = ranker.rank(items, context)
            done = time.perf_counter()
            loads.append((loaded_at - started) * 1000)
            ranks.append((done - loaded_at) * 1000)
            totals.append((done - started) * 1000)
            inserted.append(len(result.new_items))
        results[ranker_key] = {
            "cold_pool_read_ms": round(cold_ms, 1),
            "load_ms": summary(loads),
            "rank_ms": summary(ranks),
            "ranker_time_ms": summary(totals),
            "inserted_mean": round(statistics.fmean(inserted), 2),
            "candidates": len(loaded.candidates),
            "shown": len(loaded.shown),
        }
        print(ranker_key, json.dumps(results[ranker_key]), flush=True)
    await asyncdb.close_loop_pool()
    return results


def random_vectors(n: int, rng: np.random.Generator) -> np.ndarray:
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def store_refresh_fixture(n_participants: int, now: dt.datetime) -> tuple[list[queues.PoolPost], list[str]]:
    rng = np.random.default_rng(7)
    source = ContentSource.objects.create(
        name="bench", platform=PLATFORM, kind="news_outlet", connector="rss", location="https://bench.example.org/f",
        lean="centre", arms=list(ins.DEFAULTS),
    )  # fmt: skip
    vectors = random_vectors(2000 + 20000, rng)
    store_posts(
        source,
        [
            NewPost(
                post_id=f"b{i}",
                url=f"https://bench.example.org/{i}",
                title=f"Story {i}",
                text=f"The text of benchmark story {i}.",
                created_at=now,
                annotation={
                    "political_orientation": int(rng.integers(1, 8)),
                    "issue_opinions": {"trump": int(rng.integers(1, 6)), "climate": int(rng.integers(1, 6))},
                    "ideologically_surprising": bool(rng.random() < 0.2),
                    "quality": {k: False for k in QUALITY},
                    "llm_model": "m",
                    "prompt_version": "v1",
                },
                vector=vectors[i],
            )
            for i in range(2000)
        ],
        model="bench",
        now=now,
    )
    store_embeddings({f"h{i:05d}": vectors[2000 + i] for i in range(20000)}, model="bench")
    ContentItem.objects.bulk_create(
        (ContentItem(platform=PLATFORM, item_id=f"s{i}", text_hash=f"h{i:05d}", text=f"A served post about topic {i}.")
         for i in range(20000)), batch_size=5000,
    )  # fmt: skip
    participants = [f"bench{i:06d}" for i in range(n_participants)]
    with connection.cursor() as cursor:  # five slates of 50 posts each, drawn from the 20,000
        cursor.execute(
            """
            INSERT INTO rankers_slate (served_at, participant_id, study_id, arm, effective_arm, ranker_key, platform,
                content_type, session_id, original_ids, original_hashes, returned_ids, added_ids, deleted_ids,
                invalid_items, served_ms, fallback_reason, intervention_on, prefetch, n_items, n_added, n_deleted,
                phase, slate_pass, fixed_items, capped, inserted, uid)
            SELECT %s - make_interval(mins => s), p, 1, 'add_news', 'add_news', 'add_news', %s, 'post', '', '{}',
                   ARRAY(SELECT 'h' || lpad(((hashtext(p) & 65535) * 7 + s * 131 + k * 37) %% 20000 || '', 5, '0')
                         FROM generate_series(1, 50) k),
                   '{}', '{}', '{}', '{}', 500, '', true, false, 50, 0, 0, 'assigned', 1, '{}', false, '[]',
                   gen_random_uuid()
            FROM unnest(%s::text[]) AS p, generate_series(1, 5) AS s
            """,
            [now, PLATFORM, participants],
        )
    return queues.pool_posts(ins.ADD_NEWS, PLATFORM), participants


def time_refresh(n_participants: int, now: dt.datetime) -> dict[str, object]:
    started = time.perf_counter()
    posts, participants = store_refresh_fixture(n_participants, now)
    print(f"refresh fixture stored in {time.perf_counter() - started:.1f} s", flush=True)
    rng = random.Random(3)
    targets = [
        queues.QueueTarget(
            pid, {}, {"ideology": rng.randint(1, 7), "trump": rng.randint(1, 5), "climate": rng.randint(1, 5)}
        )
        for pid in participants
    ]
    results: dict[str, object] = {}
    started = time.perf_counter()
    news = queues.add_news_queues(targets, posts, PLATFORM, now=now)
    computed = time.perf_counter()
    queues.save_queues(ins.ADD_NEWS, PLATFORM, targets, news, now=now)
    saved = time.perf_counter()
    results["add_news"] = {
        "participants": len(targets),
        "personalized": len(news),
        "queue_len_mean": round(statistics.fmean(len(q) for q in news.values()), 1),
        "compute_s": round(computed - started, 2),
        "save_s": round(saved - computed, 2),
        "total_s": round(saved - started, 2),
    }
    print("refresh add_news", json.dumps(results["add_news"]), flush=True)
    cs_posts = queues.pool_posts(ins.CHALLENGING_STEREOTYPES, PLATFORM)
    started = time.perf_counter()
    stereotypes = queues.stereotypes_queues(targets, cs_posts, PLATFORM)
    computed = time.perf_counter()
    queues.save_queues(ins.CHALLENGING_STEREOTYPES, PLATFORM, targets, stereotypes, now=now)
    saved = time.perf_counter()
    results["challenging_stereotypes"] = {
        "participants": len(targets),
        "personalized": len(stereotypes),
        "queue_len_mean": round(statistics.fmean(len(q) for q in stereotypes.values()), 1),
        "compute_s": round(computed - started, 2),
        "save_s": round(saved - computed, 2),
        "total_s": round(saved - started, 2),
    }
    print("refresh challenging_stereotypes", json.dumps(results["challenging_stereotypes"]), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slates", type=int, default=2000)
    parser.add_argument("--participants", type=int, default=10000)
    args = parser.parse_args()
    start_configured()  # after the arguments: `--help` starts no server
    call_command("migrate", interactive=False, verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE rankers_slate, rankers_candidatepool, rankers_participantqueue, rankers_textembedding,"
            " rankers_contentitem, rankers_postannotation, rankers_candidatepost, rankers_connectorrun,"
            " rankers_contentsource CASCADE"
        )
    now = timezone.now()
    rng = random.Random(1)
    store_serving_fixture(candidates(2000, now, rng), "p_bench_serving", now)
    load = os.getloadavg()
    rankers = asyncio.run(time_rankers(args.slates, "p_bench_serving", now, rng))
    refresh = time_refresh(args.participants, now)
    out = ROOT / "benchmarks" / "results" / f"inserting_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(
        json.dumps(
            {
                "machine": platform.node(),
                "cpus": os.cpu_count(),
                "loadavg_before": load,
                "loadavg_after": os.getloadavg(),
                "slates": args.slates,
                "rankers": rankers,
                "refresh": refresh,
            },
            indent=2,
        )
    )
    print(f"written to {out}")
    stop_redis()
    stop_postgres()


if __name__ == "__main__":
    main()
