"""Time the dress rehearsal (``manage.py simulate_study``) on its own embedded PostgreSQL.

    rm -rf /tmp/prc-bench-sim && .venv/bin/python benchmarks/simulate_bench.py --participants 1000 --weeks 8
    rm -rf /tmp/prc-bench-sim && nice -n 19 .venv/bin/python benchmarks/simulate_bench.py --participants 2000 \
        --weeks 3 --baseline-days 7 --inclusion-days 7 --rank-every 2 --workers 4

Runs the command once (estimates included) into a fresh data directory (``PRC_DATA_DIR``, default
/tmp/prc-bench-sim), and reports the wall time of the rehearsal and of the estimates, the requests made,
requests per second, what was stored (slates, events, survey responses) and the machine's load average
before and after. Writes JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from io import StringIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PRC_DATA_DIR", "/tmp/prc-bench-sim")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prc_site.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_DEBUG", "false")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from prc_site.lib.embedded import start_configured, stop_postgres, stop_redis  # noqa: E402


def tally(output: str) -> dict[str, float]:
    """The command's summary lines (``  name: value``) as numbers."""
    found: dict[str, float] = {}
    for line in output.splitlines():
        name, _, value = line.strip().partition(": ")
        if value.replace(".", "", 1).isdigit():
            found[name] = float(value)
    return found


class Tee(StringIO):
    """The command's output, kept for the summary and shown as it comes (the day-by-day progress)."""

    def write(self, text: str) -> int:
        sys.stdout.write(text)
        sys.stdout.flush()
        return super().write(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=1000)
    parser.add_argument("--weeks", type=int, default=8)
    parser.add_argument("--rank-every", type=int, default=1)
    parser.add_argument("--baseline-days", type=int, default=14)
    parser.add_argument("--inclusion-days", type=int, default=7)
    parser.add_argument("--workers", type=int, default=1, help="simulate_study --workers")
    args = parser.parse_args()
    start_configured()
    call_command("migrate", interactive=False, verbosity=0)
    slug = f"sim-bench-{dt.datetime.now(dt.UTC):%Y%m%d%H%M%S}"
    load_before = os.getloadavg()
    out = Tee()
    started = time.perf_counter()
    call_command(
        "simulate_study",
        *("--slug", slug, "--participants", str(args.participants), "--weeks", str(args.weeks)),
        *("--rank-every", str(args.rank_every), "--seed", "1", "--workers", str(args.workers)),
        *("--baseline-days", str(args.baseline_days), "--inclusion-days", str(args.inclusion_days)),
        *("--effect", "affective_polarization=-0.2", "--effect", "active_minutes=-5"),
        stdout=out,
        verbosity=2,
    )
    total = time.perf_counter() - started
    output = out.getvalue()
    counts = tally(output)
    rehearsal = float(output.split(" in ", 1)[1].split(" s")[0])
    result = {
        "participants": args.participants,
        "weeks": args.weeks,
        "rank_every": args.rank_every,
        "baseline_days": args.baseline_days,
        "inclusion_days": args.inclusion_days,
        "workers": args.workers,
        "rehearsal_s": rehearsal,
        "estimates_s": round(total - rehearsal, 1),
        "requests_per_s": round(counts.get("requests", 0) / rehearsal, 1),
        **counts,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    stop_postgres()
    stop_redis()
    path = ROOT / "benchmarks" / "results" / f"simulate_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
