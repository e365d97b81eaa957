"""Load benchmark of the extension's ``GET /api/v1/extension/in-feed/next`` against a real server on this machine.

    python benchmarks/in_feed_bench.py              # 200 requests/s for 30 s (issue 10's target: p99 <= 20 ms),
                                                    # one web worker as `make demo` runs it
    python benchmarks/in_feed_bench.py --rate 100 --duration 10

400 enrolled participants (past baseline, the paper's seven in-feed questions loaded) ask for their
question on twitter, round robin, through the open-loop generator of benchmarks/loadgen.py. The first
request of each participant starts their prompt (through the service, on Django's sync thread); later ones
find it already shown today, which ``surveys/in_feed_asgi.py`` answers from its one read on the event loop:
the steady state of a day in the field.
Runs on its own embedded PostgreSQL and Redis (``PRC_DATA_DIR``, default /tmp/prc-bench-in-feed) and
writes JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("PRC_DATA_DIR", "/tmp/prc-bench-in-feed")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prc_site.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_DEBUG", "false")  # production-like: no query log

import django  # noqa: E402

django.setup()

import uvloop  # noqa: E402
from loadgen import Result, run_open_loop  # noqa: E402
from rank_bench import prepare_study, start_web  # noqa: E402

from prc_site.lib.embedded import stop_postgres, stop_redis  # noqa: E402
from surveys.models import InFeedPrompt  # noqa: E402
from surveys.services import load_in_feed_questions  # noqa: E402

PATH = "/api/v1/extension/in-feed/next?platform=twitter"


def get_request(host: str, token: str) -> bytes:
    lines = [f"GET {PATH} HTTP/1.1", f"Host: {host}", "Connection: keep-alive", f"Authorization: Bearer {token}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--web-workers", type=int, default=1)  # run_platform's default (WEB_WORKERS)
    parser.add_argument("--port", type=int, default=8972)
    args = parser.parse_args()
    study, people = prepare_study()
    load_in_feed_questions(study=study)
    host = f"127.0.0.1:{args.port}"
    requests = [get_request(host, token) for _, token in people]
    web = start_web(args.port, args.web_workers)
    try:
        # Warm up: every participant's prompt of today exists, and each worker has its connections.
        uvloop.run(run_open_loop("127.0.0.1", args.port, lambda i: requests[i % len(requests)], rate=100, duration_s=5))
        time.sleep(1)
        result: Result = uvloop.run(
            run_open_loop(
                "127.0.0.1", args.port, lambda i: requests[i % len(requests)], rate=args.rate, duration_s=args.duration
            )
        )
    finally:
        web.terminate()
        web.wait(timeout=30)
    outcome = {"endpoint": PATH, "rate": args.rate, "duration_s": args.duration, **result.summary()}
    outcome["prompts"] = InFeedPrompt.objects.filter(participant__study=study).count()
    stop_postgres()
    stop_redis()
    print(json.dumps(outcome, indent=1))
    out = ROOT / "benchmarks" / "results" / f"in_feed_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(exist_ok=True)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "web_workers": args.web_workers}
    out.write_text(json.dumps({"machine": machine, "results": [outcome]}, indent=1))
    print(f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
