"""Time each stage of the /rank pipeline in-process, one request at a time (no HTTP, no hold).

    python benchmarks/rank_stages.py [--requests 400]

Uses the same benchmark database and participants as rank_bench.py (PRC_DATA_DIR,
default /tmp/prc-bench-data): parsing a 50-item slate, the participant lookup
(one query, round trip included), planning and ranking with the control arm,
and building the slate record.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rank_bench
from django.utils import timezone

from participants.models import sha256_hex
from rankers import serving
from rankers.validation import parse_request


async def measure(prepared: list[tuple[str, bytes, str]]) -> dict[str, float]:
    totals = dict.fromkeys(("parse", "lookup", "rank", "record"), 0.0)
    for token, body, _ in prepared:
        t0 = time.perf_counter()
        parsed = parse_request(body)
        t1 = time.perf_counter()
        enrolment = await serving.load_enrolment(sha256_hex(token))
        assert enrolment is not None
        t2 = time.perf_counter()
        now = timezone.now()
        outcome = await serving.rank_slate(parsed, enrolment.control, user_id=enrolment.public_id, now=now)
        t3 = time.perf_counter()
        serving.slate_record(parsed, enrolment, enrolment.control, outcome, served_at=now, served_ms=0.0)
        t4 = time.perf_counter()
        for stage, seconds in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            totals[stage] += seconds
    return {stage: 1000 * seconds / len(prepared) for stage, seconds in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    _study, people = rank_bench.prepare_study()
    prepared = rank_bench.bodies(people[: args.requests], "stages")
    gc.freeze()
    for stage, ms in asyncio.run(measure(prepared)).items():
        print(f"{stage:7s} {ms:.3f} ms per request")


if __name__ == "__main__":
    main()
