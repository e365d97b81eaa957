"""Peak memory and speed of the slate-item export as the log grows.

    python benchmarks/export_bench.py                          # 1, 2.5, 5 and 10 million slate items, Parquet
    python benchmarks/export_bench.py --sizes 1000000 4000000 --format csv

For each size the slate log is filled (in SQL) up to that many items (slates of 50 items, served over the
last days), then ``participants.exports.build_export`` writes the ``slate_items`` table, the codebook and the
zip, exactly as the Celery task does. A thread samples this process's RSS every 50 ms; the peak during the
build, minus the RSS before it, is what the export itself held. Flat peaks as the size grows are the claim
(rows stream from a server-side cursor and are written a row group at a time). Runs on its own embedded
PostgreSQL (``PRC_DATA_DIR``, default /tmp/prc-bench-export) and writes JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PRC_DATA_DIR", "/tmp/prc-bench-export")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prc_site.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("PRC_EXPORT_DIR", "/tmp/prc-bench-export/exports")

import django  # noqa: E402

django.setup()

import psutil  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from participants import exports  # noqa: E402
from participants.models import Export, Study  # noqa: E402
from prc_site.lib.embedded import start_configured, stop_postgres, stop_redis  # noqa: E402
from rankers.models import Slate  # noqa: E402

ITEMS_PER_SLATE = 50
FILL_SQL = """
INSERT INTO rankers_slate (served_at, participant_id, study_id, arm, effective_arm, ranker_key, platform, content_type,
    session_id, original_ids, original_hashes, returned_ids, added_ids, deleted_ids, invalid_items, served_ms,
    fallback_reason, intervention_on, prefetch, n_items, n_added, n_deleted, phase, slate_pass, fixed_items, capped,
    uid, nrc)
SELECT now() - make_interval(secs => g), 'p_bench' || (g %% 1000), %(study)s, 'uprank_bridging', 'uprank_bridging',
    'uprank_bridging', 'reddit', 'post', '', ids.o, '{}', ids.r, '{}', '{}', '{}', 500, '', true, false, 50, 0, 0,
    'assigned', 1, '{}', false, gen_random_uuid(), 0.1
FROM generate_series(%(first)s, %(last)s) g,
     (SELECT array_agg('t3_item' || i ORDER BY i) AS o, array_agg('t3_item' || i ORDER BY i DESC) AS r
      FROM generate_series(1, 50) i) ids
"""


class PeakRss(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process()
        self.peak = self.process.memory_info().rss
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.05):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def stop(self) -> int:
        self.stopped.set()
        self.join()
        return self.peak


def fill(study: Study, items: int) -> None:
    have = Slate.objects.filter(study_id=study.pk).count()
    want = items // ITEMS_PER_SLATE
    for first in range(have + 1, want + 1, 100_000):
        with connection.cursor() as cursor:
            cursor.execute(FILL_SQL, {"study": study.pk, "first": first, "last": min(want, first + 99_999)})
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE rankers_slate")


def export_once(study: Study, fmt: str) -> dict[str, float | int]:
    export = Export.objects.create(study=study, datasets=["slate_items"], format=fmt)
    before = psutil.Process().memory_info().rss
    sampler = PeakRss()
    sampler.start()
    started = time.perf_counter()
    exports.build_export(export.pk)
    seconds = time.perf_counter() - started
    peak = sampler.stop()
    export.refresh_from_db()
    exports.export_path(export).unlink()
    return {
        "rows": export.rows_done,
        "seconds": round(seconds, 1),
        "rows_per_s": round(export.rows_done / seconds),
        "rss_before_mib": round(before / 2**20, 1),
        "peak_rss_mib": round(peak / 2**20, 1),
        "peak_growth_mib": round((peak - before) / 2**20, 1),
        "zip_mib": round(export.size_bytes / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 2_500_000, 5_000_000, 10_000_000])
    parser.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    args = parser.parse_args()
    start_configured()  # after the arguments: `--help` starts no server
    call_command("migrate", interactive=False, verbosity=0)
    study, _ = Study.objects.get_or_create(slug="bench-export", defaults={"name": "Export benchmark"})
    results = []
    for size in sorted(args.sizes):
        fill(study, size)
        outcome = {"slate_items": size, "format": args.format, **export_once(study, args.format)}
        print(json.dumps(outcome), flush=True)
        results.append(outcome)
    stop_postgres()
    stop_redis()
    out = ROOT / "benchmarks" / "results" / f"export_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}.json"
    meta = {"python": platform.python_version(), "cpus": os.cpu_count(), "row_group_rows": exports.ROW_GROUP_ROWS}
    out.write_text(json.dumps({"runs": results, **meta}, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
