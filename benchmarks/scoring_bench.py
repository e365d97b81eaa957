"""Load benchmark of the bridging arms with scoring off the request path, on ``make demo``'s configuration.

    python benchmarks/scoring_bench.py                       # 10 and 25 req/s, then the repeated-post workload
    python benchmarks/scoring_bench.py --rates 10 --duration 30 --skip-repeat
    python benchmarks/scoring_bench.py --rates 10 25 --skip-repeat --with-inserting   # all six arms

It starts ``manage.py run_platform`` (what ``make demo`` runs: one web process, a Celery worker, a scorer worker
with ``PRC_SCORER_WORKERS`` processes and beat) on its own embedded PostgreSQL and Redis (``PRC_DATA_DIR``,
default /tmp/prc-scoring-bench-data), and a study with a 500 ms hold and the default 400 ms ranker budget. Then,
for each rate, an open-loop load generator sends 50 never-seen twitter posts per request to the two bridging arms
(half the rate each, interleaved) while a control participant probes at 2 requests a second, and reports per
arm the latency the client saw, the share of slates treated and the share of items scored (from the slate log),
the scoring service's counters (jobs refused and expired, texts scored), the CPU time the scorer processes got
(and texts scored per CPU-second of theirs) and the load average. The repeated-post workload draws each slate's
50 posts from a pool of 300 and reports the share of items served from the shared cache. Last, the backend's
throughput on one core (one process scoring batches of 256), per second of wall time and per CPU-second.

Writes JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("PRC_DATA_DIR", "/tmp/prc-scoring-bench-data")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prc_site.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_DEBUG", "false")

import django  # noqa: E402

django.setup()

import orjson  # noqa: E402
import psutil  # noqa: E402
import uvloop  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db.models import Count, Q, Sum  # noqa: E402
from django.utils import timezone  # noqa: E402
from loadgen import Result, build_request, run_open_loop  # noqa: E402
from ranking_challenge.fake import fake_request  # noqa: E402

from participants.models import Arm, Study  # noqa: E402
from prc_site.lib.embedded import start_configured, stop_postgres, stop_redis  # noqa: E402
from rankers.management.commands.enroll_test_participant import create_test_participant  # noqa: E402
from rankers.models import Slate  # noqa: E402
from rankers.scoring import make_backend, score_texts, scoring_attributes, stats, worker  # noqa: E402

HOLD_MS = 500
BRIDGING_ARMS = ("uprank_bridging", "bridging_downrank_toxic")
INSERTING_ARMS = ("challenging_stereotypes", "diverse_approval", "add_news")  # --with-inserting
PARTICIPANTS_PER_ARM = 30  # the per-token rate limit (10/s) is never what limits the load
CONTROL_RATE = 2.0
STARTED = dt.date(2024, 1, 1)


def prepare_study(with_inserting: bool = False) -> dict[str, list[tuple[str, str]]]:
    call_command("migrate", interactive=False, verbosity=0)
    study, _ = Study.objects.get_or_create(
        slug="scoring-bench",
        defaults={"name": "Scoring benchmark", "status": Study.Status.RUNNING, "ramp_days": 0, "rank_hold_ms": HOLD_MS},
    )
    people: dict[str, list[tuple[str, str]]] = {}
    for key in ("control", *treatment_arms(with_inserting)):
        arm, _ = Arm.objects.get_or_create(
            study=study,
            slug=key.replace("_", "-"),
            defaults={
                "name": key,
                "ranker_key": key,
                "is_control": key == "control",
                **{f"starts_{p}": STARTED for p in ("facebook", "reddit", "twitter")},
            },
        )
        people[key] = [_participant(arm) for _ in range(PARTICIPANTS_PER_ARM)]
    if with_inserting:
        store_inserting_pools({key: people[key] for key in INSERTING_ARMS})
    return people


def treatment_arms(with_inserting: bool) -> tuple[str, ...]:
    return (*BRIDGING_ARMS, *INSERTING_ARMS) if with_inserting else BRIDGING_ARMS


def store_inserting_pools(people: dict[str, list[tuple[str, str]]]) -> None:
    """Each inserting arm's candidate pool for twitter (2,000 fresh annotated posts, as the inserting benchmark
    builds them) and a queue of 200 of them for each of its participants, as the content pipeline leaves them."""
    from inserting_bench import candidates  # the inserting benchmark's annotated candidates

    from rankers.content.inventory import candidate_row
    from rankers.content.models import CandidatePool, ParticipantQueue

    now = timezone.now()
    pool = candidates(2000, now, random.Random(5))
    newest = max(c.posted_at for c in pool if c.posted_at)
    for key, members in people.items():
        CandidatePool.objects.update_or_create(
            ranker_key=key, platform="twitter",
            defaults={"built_at": now, "newest_post_at": newest, "candidates": [candidate_row(c) for c in pool],
                      "default_ids": [c.id for c in pool], "size": len(pool)},
        )  # fmt: skip
        for public_id, _token in members:
            ParticipantQueue.objects.update_or_create(
                participant_id=public_id, ranker_key=key, platform="twitter",
                defaults={"candidate_ids": [c.id for c in random.Random(public_id).sample(pool, 200)]},
            )  # fmt: skip


def _participant(arm: Arm) -> tuple[str, str]:
    participant, token = create_test_participant(arm=arm, past_baseline=True)
    return participant.public_id, token


_TEMPLATE: dict[str, Any] = orjson.loads(fake_request(n_posts=50, platform="twitter").model_dump_json())
_WORDS = [item.text for _ in range(20) for item in fake_request(n_posts=50, platform="twitter").items]
_rng = random.Random(11)


def slate_body(user_id: str, session_id: str, texts: list[str]) -> bytes:
    """A 50-post twitter request from the PRC package's generator, with these texts."""
    data = {**_TEMPLATE, "session": {**_TEMPLATE["session"], "user_id": user_id, "session_id": session_id}}
    data["items"] = [{**post, "text": text} for post, text in zip(_TEMPLATE["items"], texts, strict=True)]
    return orjson.dumps(data)


def fresh_texts(n: int) -> list[str]:
    """Posts nobody has seen: texts of the PRC package's generator, each made unique."""
    return [f"{_rng.choice(_WORDS)} ({uuid.uuid4().hex[:12]})" for _ in range(n)]


def requests_for(people: list[tuple[str, str]], run: str, count: int, port: int, texts: Any) -> list[bytes]:
    out = []
    for i in range(count):
        user_id, token = people[i % len(people)]
        body = slate_body(user_id, f"{run}-{i}", texts())
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        out.append(build_request(f"127.0.0.1:{port}", "/rank", body, headers))
    return out


async def run_streams(port: int, streams: dict[str, tuple[list[bytes], float]], duration_s: float) -> dict[str, Result]:
    """Run the streams at once, each an open loop at its own rate; their latencies are kept apart. The treatment
    arms' streams interleave (with two, the second starts half its period after the first): at 1 req/s a fresh
    slate arrives every second, not two together every two seconds."""

    def cycling(requests: list[bytes]) -> Callable[[int], bytes]:
        return lambda i: requests[i % len(requests)]

    names = list(streams)
    treated = [n for n in names if n != "control"]

    def offset(name: str) -> float:
        return treated.index(name) / (len(treated) * streams[name][1]) if name in treated else 0.0

    loops = [
        run_open_loop(
            "127.0.0.1", port, cycling(streams[n][0]), rate=streams[n][1], duration_s=duration_s, offset_s=offset(n)
        )
        for n in names
    ]
    return dict(zip(names, await asyncio.gather(*loops), strict=True))


def slate_outcomes(run: str) -> dict[str, Any]:
    rows = Slate.objects.filter(session_id__startswith=run).aggregate(
        slates=Count("id"),
        treated=Count("id", filter=Q(intervention_on=True)),
        scored=Sum("n_scored"),
        items=Sum("n_items"),
    )
    return {
        "slates_logged": rows["slates"],
        "treated_share": round(rows["treated"] / rows["slates"], 4) if rows["slates"] else None,
        "scored_share": round((rows["scored"] or 0) / rows["items"], 4) if rows["items"] else None,
    }


def counters_since(before: dict[str, int]) -> dict[str, int]:
    return {name: value - before.get(name, 0) for name, value in stats.totals().items()}


def run_rate(
    people: dict[str, list[tuple[str, str]]],
    port: int,
    rate: float,
    duration_s: float,
    *,
    no_scoring: bool = False,
    with_inserting: bool = False,
) -> dict[str, Any]:
    """``no_scoring``: the same load sent to control participants, for what the machine gives without scoring.
    ``with_inserting``: the rate is shared by the five treatment arms (bridging and inserting) instead of the two
    bridging arms."""
    tag = f"r{rate:g}-{uuid.uuid4().hex[:6]}"
    arms = treatment_arms(with_inserting)
    count = int(rate / len(arms) * duration_s) + 1
    streams = {
        arm: (
            requests_for(
                people["control" if no_scoring else arm], f"{tag}-{arm}", count, port, lambda: fresh_texts(50)
            ),
            rate / len(arms),
        )
        for arm in arms
    }
    control_count = int(CONTROL_RATE * duration_s) + 1
    streams["control"] = (
        requests_for(people["control"], f"{tag}-control", control_count, port, lambda: fresh_texts(50)),
        CONTROL_RATE,
    )
    before, load_before, cpu_before = stats.totals(), os.getloadavg(), scorer_cpu_seconds()
    results = uvloop.run(run_streams(port, streams, duration_s))
    load_after = os.getloadavg()
    time.sleep(3)  # the last slates are written during their hold
    outcomes = {arm: {**results[arm].summary(), **slate_outcomes(f"{tag}-{arm}")} for arm in streams}
    scenario = f"fresh posts at {rate:g} req/s" + (", all to control participants" if no_scoring else "")
    scenario += " over the bridging and inserting arms" if with_inserting else ""
    counters = counters_since(before)
    cpu = scorer_cpu_seconds() - cpu_before
    return {"scenario": scenario, "rate": rate, "duration_s": duration_s, "arms": outcomes, "scoring": counters,
            "scorer_cpu": {"seconds": round(cpu, 1), "cores": round(cpu / (duration_s + 3), 2),
                           "texts_per_cpu_second": round(counters["texts_scored"] / cpu, 1) if cpu else None},
            "load_average": {"before": load_before, "after": load_after}}  # fmt: skip


def scorer_cpu_seconds() -> float:
    """CPU time (user and system) the scorer worker's processes have used so far: the processes whose command
    line consumes the scoring queue."""
    total = 0.0
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "celery" in cmdline and settings.PRC_SCORER_QUEUE in cmdline:
            try:
                times = process.cpu_times()
            except psutil.Error:  # ended meanwhile
                continue
            total += times.user + times.system
    return total


def run_repeat(people: dict[str, list[tuple[str, str]]], port: int, rate: float, duration_s: float) -> dict[str, Any]:
    tag = f"repeat-{uuid.uuid4().hex[:6]}"
    pool = fresh_texts(300)
    rng = random.Random(7)
    count = int(rate / 2 * duration_s) + 1
    streams = {
        arm: (requests_for(people[arm], f"{tag}-{arm}", count, port, lambda: rng.sample(pool, 50)), rate / 2)
        for arm in BRIDGING_ARMS
    }
    before = stats.totals()
    results = uvloop.run(run_streams(port, streams, duration_s))
    time.sleep(3)
    counters = counters_since(before)
    wanted = counters["items_wanted"]
    return {
        "scenario": f"repeated posts (pool of 300) at {rate:g} req/s",
        "arms": {arm: {**results[arm].summary(), **slate_outcomes(f"{tag}-{arm}")} for arm in streams},
        "scoring": counters,
        "served_from_cache_share": round(counters["texts_cached"] / wanted, 4) if wanted else None,
    }


def backend_throughput(seconds: float = 10.0) -> dict[str, Any]:
    """The backend alone in this process, as a scorer process runs it (a torch model on ``PRC_SCORER_THREADS``
    threads), on batches of 256 fresh texts: texts per second of wall time (what this process got of the shared
    cores) and per CPU-second of this process (the rate of one core given to scoring)."""
    backend = make_backend()
    worker.limit_model_threads()
    attributes = scoring_attributes()
    score_texts(backend, ["warm up"], attributes)
    done, started, cpu_started = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        texts = fresh_texts(256)
        done += len(score_texts(backend, texts, attributes).entries)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return {
        "backend": os.environ.get("PRC_SCORER_BACKEND", "baseline"),
        "texts_per_second_one_core": round(done / elapsed),
        "texts_per_cpu_second": round(done / cpu, 1),
    }


def start_platform(port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "manage.py", "run_platform", "--port", str(port), "--keep-services"]
    platform_process = subprocess.Popen(
        command, cwd=ROOT, env={**os.environ}, start_new_session=True, stdout=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                if response.status == 200:
                    time.sleep(5)  # the scorer worker loads its backend
                    return platform_process
        except OSError:
            time.sleep(0.5)
    os.killpg(platform_process.pid, signal.SIGTERM)
    raise RuntimeError("the platform did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=float, nargs="+", default=[10, 25])
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--repeat-rate", type=float, default=10)
    parser.add_argument("--skip-repeat", action="store_true")
    parser.add_argument(
        "--no-scoring", action="store_true", help="Send the bridging streams to control participants (a reference)."
    )
    parser.add_argument(
        "--with-inserting",
        action="store_true",
        help="Share each rate over the bridging and the three inserting arms (served from stored pools and queues).",
    )
    parser.add_argument("--port", type=int, default=8972)
    args = parser.parse_args()
    start_configured()  # after the arguments: `--help` starts no server
    people = prepare_study(args.with_inserting)
    running = start_platform(args.port)
    results = []
    try:
        warm = {arm: (requests_for(people[arm], f"warm-{arm}", 10, args.port, lambda: fresh_texts(50)), 2.0)
                for arm in ("control", *treatment_arms(args.with_inserting))}  # fmt: skip
        uvloop.run(run_streams(args.port, warm, 5))
        for rate in args.rates:
            outcome = run_rate(
                people, args.port, rate, args.duration, no_scoring=args.no_scoring, with_inserting=args.with_inserting
            )
            print(json.dumps(outcome, indent=1), flush=True)
            results.append(outcome)
        if not args.skip_repeat:
            outcome = run_repeat(people, args.port, args.repeat_rate, args.duration / 2)
            print(json.dumps(outcome, indent=1), flush=True)
            results.append(outcome)
    finally:
        os.killpg(running.pid, signal.SIGTERM)
        running.wait(timeout=60)
    throughput = backend_throughput()
    print(json.dumps(throughput), flush=True)
    stop_postgres()
    stop_redis()
    out = ROOT / "benchmarks" / "results" / f"scoring_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(exist_ok=True)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(),
               "scorer_workers": os.environ.get("PRC_SCORER_WORKERS", "2"), "scorer": worker.identity()}  # fmt: skip
    out.write_text(json.dumps({"machine": machine, "results": results, "throughput": throughput}, indent=1))
    print(f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
