"""Load benchmark of ``POST /rank`` against a real uvicorn server on this machine.

    python benchmarks/rank_bench.py                 # all three scenarios
    python benchmarks/rank_bench.py --scenario burst --web-workers 2

Scenarios (issue 3, "Speed"): 50-item twitter slates, control arm, participants
past baseline, load generator (benchmarks/loadgen.py, open loop, on uvloop like the
server, so that it takes as little as it can of the two cores) in this process:

- ``nohold``: hold 0 ms, 200 requests/s for 30 s: the server's own time;
- ``steady``: hold 500 ms, 300 requests/s for 60 s (about 150 held at once);
- ``burst``: hold 500 ms, 1,000 requests sent at the same moment.

The benchmark runs on its own embedded PostgreSQL and Redis (``PRC_DATA_DIR``,
default /tmp/prc-bench-data), never the development ones. It samples CPU and
peak RSS of the web processes, PostgreSQL and itself, checks that every
answered slate is in the slate log, and writes JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("PRC_DATA_DIR", "/tmp/prc-bench-data")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prc_site.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_DEBUG", "false")  # production-like: no query log

import django  # noqa: E402

django.setup()

import orjson  # noqa: E402
import psutil  # noqa: E402
import uvloop  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from loadgen import Result, build_request, run_burst, run_open_loop  # noqa: E402
from ranking_challenge.fake import fake_request  # noqa: E402

from participants.models import Arm, Study  # noqa: E402
from prc_site.lib.embedded import start_configured, stop_postgres, stop_redis  # noqa: E402
from rankers.management.commands.enroll_test_participant import create_test_participant  # noqa: E402
from rankers.models import Slate  # noqa: E402

SCENARIOS = {
    "nohold": {"hold_ms": 0, "rate": 200, "duration_s": 30},
    "steady": {"hold_ms": 500, "rate": 300, "duration_s": 60},
    "burst": {"hold_ms": 500, "count": 1000},
}
N_PARTICIPANTS = 400
WEB_LOG = Path(os.environ["PRC_DATA_DIR"]) / "rank_bench_web.log"


def log_counts(offset: int) -> dict[str, int]:
    """How often the web log says a slate write failed, and that a slate was lost, after ``offset``."""
    with WEB_LOG.open("rb") as log:
        log.seek(offset)
        text = log.read()
    return {"write_failures_logged": text.count(b"slate write failed"), "slates_lost_logged": text.count(b"slate LOST")}


def prepare_study() -> tuple[Study, list[tuple[str, str]]]:
    call_command("migrate", interactive=False, verbosity=0)
    study, _ = Study.objects.get_or_create(
        slug="bench", defaults={"name": "Benchmark", "status": Study.Status.RUNNING, "ramp_days": 0}
    )
    arm, _ = Arm.objects.get_or_create(
        study=study,
        slug="control",
        defaults={
            "name": "Control",
            "ranker_key": "control",
            "is_control": True,
            "allocation_weight": 2,
            "starts_facebook": dt.date(2024, 1, 1),
            "starts_reddit": dt.date(2024, 1, 1),
            "starts_twitter": dt.date(2024, 1, 1),
        },
    )
    cache = Path(os.environ["PRC_DATA_DIR"]) / "bench_tokens.json"
    people: list[tuple[str, str]] = json.loads(cache.read_text()) if cache.exists() else []
    while len(people) < N_PARTICIPANTS:
        participant, token = create_test_participant(arm=arm, past_baseline=True)
        people.append((participant.public_id, token))
    cache.write_text(json.dumps(people))
    return study, people


def bodies(people: list[tuple[str, str]], run: str) -> list[tuple[str, bytes, str]]:
    """One 50-item twitter slate per participant: (token, body, session id prefix)."""
    out = []
    for user_id, token in people:
        request = fake_request(n_posts=50, platform="twitter")
        data = orjson.loads(request.model_dump_json())
        data["session"]["user_id"] = user_id
        data["session"]["session_id"] = f"{run}-{uuid.uuid4().hex[:8]}"
        out.append((token, orjson.dumps(data), data["session"]["session_id"]))
    return out


class Sampler(threading.Thread):
    """CPU seconds and peak RSS per process group while a scenario runs."""

    def __init__(self, groups: dict[str, list[psutil.Process]]) -> None:
        super().__init__(daemon=True)
        self.groups = groups
        self.peak_rss: dict[str, int] = dict.fromkeys(groups, 0)
        self.peak_rss_one: dict[str, int] = dict.fromkeys(groups, 0)
        self.cpu_start = {name: self._cpu(procs) for name, procs in groups.items()}
        self.cpu_start_each = {proc.pid: self._cpu([proc]) for procs in groups.values() for proc in procs}
        self.stop_event = threading.Event()

    @staticmethod
    def _cpu(procs: list[psutil.Process]) -> float:
        total = 0.0
        for proc in procs:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
        return total

    def run(self) -> None:
        while not self.stop_event.wait(0.2):
            for name, procs in self.groups.items():
                rss = 0
                for proc in procs:
                    with contextlib.suppress(psutil.Error):
                        one = proc.memory_info().rss
                        rss += one
                        self.peak_rss_one[name] = max(self.peak_rss_one[name], one)
                self.peak_rss[name] = max(self.peak_rss[name], rss)

    def finish(self, wall_s: float) -> dict[str, dict[str, float]]:
        self.stop_event.set()
        self.join()
        # PostgreSQL backends that started during the scenario (pool connections opened under load) count
        # from zero; without this their CPU would be missed.
        known = {p.pid for p in self.groups["postgres"]}
        for proc in postgres_processes():
            if proc.pid not in known:
                self.groups["postgres"].append(proc)
                self.cpu_start_each[proc.pid] = 0.0
        self.cpu_start["postgres"] = sum(self.cpu_start_each[p.pid] for p in self.groups["postgres"])
        return {
            name: {
                "cpu_percent_of_one_core": round(100 * (self._cpu(procs) - self.cpu_start[name]) / wall_s, 1),
                # Summed RSS counts shared pages (PostgreSQL's shared buffers) once per process.
                "peak_rss_mib_sum": round(self.peak_rss[name] / 2**20, 1),
                "peak_rss_mib_largest_process": round(self.peak_rss_one[name] / 2**20, 1),
                "processes": len(procs),
                "cpu_percent_busiest_process": max(
                    round(100 * (self._cpu([p]) - self.cpu_start_each[p.pid]) / wall_s, 1) for p in procs
                ),
            }
            for name, procs in self.groups.items()
        }


def start_web(port: int, workers: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "prc_site.serve", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers)]  # fmt: skip
    # The web log is read back for slates the server could not keep (it says "slate LOST" for each).
    log = WEB_LOG.open("ab")
    web = subprocess.Popen(command, cwd=ROOT, env={**os.environ}, stderr=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                if response.status == 200:
                    return web
        except OSError:
            time.sleep(0.3)
    web.kill()
    raise RuntimeError("web server did not start")


def postgres_processes() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["name"]) if (p.info["name"] or "").startswith("postgres")]


def process_groups(web: subprocess.Popen[bytes]) -> dict[str, list[psutil.Process]]:
    parent = psutil.Process(web.pid)
    return {
        "web": [parent, *parent.children(recursive=True)],
        "postgres": postgres_processes(),
        "loadgen": [psutil.Process()],
    }


def in_fallback(run: str) -> int:
    """Slates of this run waiting in the Redis fallback lists (stored later by the drain, so not lost)."""
    import redis

    from rankers import slatelog

    client = redis.Redis.from_url(slatelog.redis_url())
    return sum(
        1
        for name in slatelog.fallback_lists()
        for raw in client.lrange(name, 0, -1)
        if orjson.loads(raw).get("session_id", "").startswith(run)
    )


def count_logged(run: str, before: int, expected: int) -> tuple[int, float]:
    """Slates of this run in the log once they are all there, or once every write could have ended.

    A write may run on after its answer for up to RANK_WRITE_TIMEOUT_S and then go to the Redis fallback within
    RANK_FALLBACK_TIMEOUT_S, so counting right after the load (as this script once did, after 2 s) misses slates
    that a loaded machine is still writing."""
    started = time.monotonic()
    limit = started + settings.RANK_WRITE_TIMEOUT_S + settings.RANK_FALLBACK_TIMEOUT_S + 2
    while True:
        after = Slate.objects.filter(session_id__startswith=run).count()
        if after - before >= expected or time.monotonic() > limit:
            return after, time.monotonic() - started
        time.sleep(0.25)


def run_scenario(name: str, study: Study, people: list[tuple[str, str]], port: int, web: Any) -> dict[str, Any]:
    spec = SCENARIOS[name]
    Study.objects.filter(pk=study.pk).update(rank_hold_ms=spec["hold_ms"], ramp_days=0)
    run = f"bench-{name}-{uuid.uuid4().hex[:6]}"
    prepared = bodies(people, run)
    requests = [
        build_request(
            f"127.0.0.1:{port}", "/rank", body, {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        )
        for token, body, _ in prepared
    ]

    def make(i: int) -> bytes:
        return requests[i % len(requests)]

    # Warm up each worker's connections and caches, then measure.
    uvloop.run(run_open_loop("127.0.0.1", port, make, rate=50, duration_s=2))
    time.sleep(1)
    before = Slate.objects.filter(session_id__startswith=run).count()
    log_offset = WEB_LOG.stat().st_size
    sampler = Sampler(process_groups(web))
    sampler.start()
    started = time.perf_counter()
    if "count" in spec:
        result: Result = uvloop.run(run_burst("127.0.0.1", port, make, count=spec["count"]))
    else:
        result = uvloop.run(run_open_loop("127.0.0.1", port, make, rate=spec["rate"], duration_s=spec["duration_s"]))
    resources = sampler.finish(time.perf_counter() - started)
    ok = result.statuses.get(200, 0)
    after, waited = count_logged(run, before, ok)
    return {
        "scenario": name,
        **spec,
        **result.summary(),
        "resources": resources,
        "slates_logged": after - before,
        "slates_in_fallback": in_fallback(run),
        **log_counts(log_offset),
        "log_wait_s": round(waited, 1),
        "all_logged": after - before == ok,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=[*SCENARIOS, "all"], default="all")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8971)
    args = parser.parse_args()
    start_configured()  # after the arguments: `--help` starts no server
    study, people = prepare_study()
    web = start_web(args.port, args.web_workers)
    results = []
    try:
        for name in SCENARIOS if args.scenario == "all" else [args.scenario]:
            outcome = run_scenario(name, study, people, args.port, web)
            print(json.dumps(outcome, indent=1), flush=True)
            results.append(outcome)
    finally:
        web.terminate()
        web.wait(timeout=30)
        # The benchmark's own PostgreSQL and Redis are not shared with anything: stop them, so that removing
        # PRC_DATA_DIR for the next run leaves no server behind.
        stop_postgres()
        stop_redis()
    out = ROOT / "benchmarks" / "results" / f"rank_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(exist_ok=True)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "web_workers": args.web_workers}
    out.write_text(json.dumps({"machine": machine, "results": results}, indent=1))
    print(f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
