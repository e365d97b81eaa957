"""Load benchmark of ``POST /api/v1/extension/events`` against a real server on this machine.

    python benchmarks/events_bench.py                       # 60 batches/s of 500 events (30,000 events/s), 20 s
    python benchmarks/events_bench.py --rate 40 --duration 30

400 enrolled participants (the ranking benchmark's, past baseline) send batches of 500 events (views,
engagements and activity pings on three platforms, each batch with its own key) through the open-loop
generator of benchmarks/loadgen.py to the production-like web tier (``prc_site.serve``, 2 workers,
``DJANGO_DEBUG=false``). Afterwards the events stored by the run are counted: the number that matters is
events stored per second of the run, with every batch answered 200. Past the server's capacity (an overload
run, e.g. ``--rate 120``) the answers that matter are 503 with Retry-After (``EVENTS_MAX_IN_FLIGHT``), never a
500, and every batch answered 200 stored. The load average before and after the run is recorded.
Runs on its own embedded PostgreSQL and Redis (``PRC_DATA_DIR``, default /tmp/prc-bench-events) and writes
JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("PRC_DATA_DIR", "/tmp/prc-bench-events")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prc_site.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_DEBUG", "false")  # production-like: no query log

import django  # noqa: E402

django.setup()

import orjson  # noqa: E402
import uvloop  # noqa: E402
from loadgen import Result, build_request, run_open_loop  # noqa: E402
from rank_bench import Sampler, prepare_study, process_groups, start_web  # noqa: E402

from participants.models import EventBatch  # noqa: E402
from prc_site.lib.embedded import stop_postgres, stop_redis  # noqa: E402

PATH = "/api/v1/extension/events"
BATCH = 500


def event_templates(n: int, seed: int = 7) -> list[list[dict[str, Any]]]:
    """``n`` batches of ``BATCH`` events from the last five minutes: 60% views, 10% engagements, 30% pings."""
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    batches = []
    for _ in range(n):
        events: list[dict[str, Any]] = []
        for i in range(BATCH):
            platform = rng.choice(("facebook", "reddit", "twitter"))
            at = (now - dt.timedelta(seconds=rng.uniform(0, 300))).isoformat()
            roll = rng.random()
            if roll < 0.6:
                events.append({"kind": "view", "platform": platform, "at": at, "item_id": f"item-{i}"})
            elif roll < 0.7:
                events.append({"kind": "engagement", "platform": platform, "at": at, "item_id": f"item-{i}",
                               "action": rng.choice(("like", "share", "comment", "reaction"))})  # fmt: skip
            else:
                events.append({"kind": "activity", "platform": platform, "at": at, "active_page": True,
                               "user_active": rng.random() < 0.5})  # fmt: skip
        batches.append(events)
    return batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=60, help="batches per second")
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8974)
    args = parser.parse_args()
    _, people = prepare_study()
    templates = event_templates(16)
    host = f"127.0.0.1:{args.port}"
    run = uuid.uuid4().hex[:8]

    def make(i: int, prefix: str = run) -> bytes:
        _, token = people[i % len(people)]
        body = orjson.dumps({"batch_key": f"{prefix}-{i:08d}", "events": templates[i % len(templates)]})
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        return build_request(host, PATH, body, headers)

    web = start_web(args.port, args.web_workers)
    try:
        uvloop.run(run_open_loop("127.0.0.1", args.port, lambda i: make(i, f"warm-{run}"), rate=10, duration_s=3))
        time.sleep(1)
        sampler = Sampler(process_groups(web))
        load_before = os.getloadavg()
        sampler.start()
        started = time.perf_counter()
        result: Result = uvloop.run(
            run_open_loop("127.0.0.1", args.port, make, rate=args.rate, duration_s=args.duration)
        )
        resources = sampler.finish(time.perf_counter() - started)
        load_after = os.getloadavg()
    finally:
        web.terminate()
        web.wait(timeout=30)
    batches = EventBatch.objects.filter(batch_key__startswith=f"{run}-")
    stored = sum(batches.values_list("n_accepted", flat=True))
    outcome = {
        "endpoint": PATH,
        "batch_size": BATCH,
        "rate_batches_per_s": args.rate,
        "duration_s": args.duration,
        **result.summary(),
        "batches_stored": batches.count(),
        "events_stored": stored,
        "events_per_s": round(stored / result.wall_s),
        "resources": resources,
        "load_average_before": [round(x, 2) for x in load_before],  # 1, 5, 15 min, as uptime prints them
        "load_average_after": [round(x, 2) for x in load_after],
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    stop_postgres()
    stop_redis()
    out = ROOT / "benchmarks" / "results" / f"events_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(outcome, indent=2))
    print(json.dumps({k: v for k, v in outcome.items() if k != "resources"}, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
