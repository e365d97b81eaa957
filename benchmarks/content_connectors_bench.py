"""Connector throughput: items normalized and upserted per second, for each document shape.

    python benchmarks/content_connectors_bench.py             # 10,000 items per document
    python benchmarks/content_connectors_bench.py --items 50000

Runs on its own embedded PostgreSQL (``PRC_DATA_DIR``, default /tmp/prc-bench-content), migrated here. For
each connector it builds one document of ``--items`` items in memory (Apify-style JSON lines and CSV, a Reddit
listing, an RSS feed) and times ``services.fetch_source`` on it three ways: reading only (parse + normalize),
a first run into an empty inventory (parse + normalize + upsert), and the same run again (all duplicates).
No network: the document is handed over as bytes, so this is the connectors' own cost.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PRC_DATA_DIR", "/tmp/prc-bench-content")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prc_site.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_DEBUG", "false")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from prc_site.lib.embedded import start_configured, stop_postgres, stop_redis  # noqa: E402
from rankers.content import services  # noqa: E402
from rankers.content.models import CandidatePost, ConnectorRun, ContentSource  # noqa: E402

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
WORDS = [
    "the",
    "council",
    "voted",
    "on",
    "a",
    "new",
    "bridge",
    "across",
    "the",
    "river",
    "while",
    "residents",
    "asked",
    "about",
    "costs",
    "and",
    "schedules",
]


def text(i: int) -> str:
    return " ".join(WORDS[(i + k) % len(WORDS)] for k in range(30)) + f" #{i}"


def jsonl(n: int) -> bytes:
    rows = (
        {
            "id": str(10**18 + i),
            "url": f"https://x.com/desk/status/{10**18 + i}?utm_source=x",
            "fullText": text(i),
            "createdAt": (T0 + dt.timedelta(seconds=i)).strftime("%a %b %d %H:%M:%S +0000 %Y"),
            "author": {"userName": "desk", "name": "News Desk"},
            "media": [{"type": "photo", "altText": f"photo {i}"}],
        }
        for i in range(n)
    )
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def csv_export(n: int) -> bytes:
    lines = ["postId,url,text,time,pageName,media/0/accessibilityCaption"]
    lines += [
        f'{i},https://www.facebook.com/page/posts/{i},"{text(i)}",{(T0 + dt.timedelta(seconds=i)).isoformat()},P,img'
        for i in range(n)
    ]
    return ("\n".join(lines) + "\n").encode()


def reddit(n: int) -> bytes:
    children = [
        {
            "kind": "t3",
            "data": {
                "name": f"t3_{i:x}",
                "title": f"Post {i}",
                "selftext": text(i),
                "author": "someone",
                "permalink": f"/r/news/comments/{i:x}/post/",
                "created_utc": T0.timestamp() + i,
            },
        }
        for i in range(n)
    ]
    return json.dumps({"kind": "Listing", "data": {"children": children}}).encode()


def rss(n: int) -> bytes:
    items = "".join(
        f"<item><title>Story {i}</title><link>https://news.example.org/s/{i}</link><guid>s-{i}</guid>"
        f"<pubDate>{(T0 + dt.timedelta(seconds=i)).strftime('%a, %d %b %Y %H:%M:%S GMT')}</pubDate>"
        f'<description>&lt;p&gt;{text(i)}&lt;/p&gt;&lt;img alt="photo {i}" src="a.jpg"&gt;</description></item>'
        for i in range(n)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Bench</title>{items}</channel></rss>'.encode()


CASES: list[tuple[str, str, str, Callable[[int], bytes]]] = [
    ("dataset JSON lines", "dataset", "twitter", jsonl),
    ("dataset CSV", "dataset", "facebook", csv_export),
    ("Reddit listing", "reddit", "reddit", reddit),
    ("RSS", "rss", "twitter", rss),
]


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=10_000)
    n = parser.parse_args().items
    start_configured()  # after the arguments: `--help` starts no server
    call_command("migrate", interactive=False, verbosity=0)
    ConnectorRun.objects.all().delete()
    CandidatePost.objects.all().delete()
    ContentSource.objects.all().delete()
    results = []
    for label, connector, platform_name, build in CASES:
        data = build(n)
        source = ContentSource.objects.create(
            name=label,
            platform=platform_name,
            kind="account",
            connector=connector,
            location=f"https://bench/{connector}",
        )
        read_s = timed(lambda: services.read_document(source, data))  # noqa: B023
        first_s = timed(lambda: services.fetch_source(source_id=source.pk, data=data))  # noqa: B023
        again_s = timed(lambda: services.fetch_source(source_id=source.pk, data=data))  # noqa: B023
        first, again = ConnectorRun.objects.filter(source=source).order_by("started_at")
        if (first.items_new, again.items_duplicate) != (n, n):
            raise SystemExit(
                f"{label}: expected {n} new then {n} duplicates, got {first.items_new}, {again.items_duplicate}"
            )
        row = {
            "connector": label,
            "items": n,
            "bytes": len(data),
            "read_items_per_s": round(n / read_s),
            "first_run_items_per_s": round(n / first_s),
            "repeat_run_items_per_s": round(n / again_s),
            "upsert_share_of_first_run": round(1 - read_s / first_s, 2),
        }
        results.append(row)
        print(
            f"{label:<19} {n} items, {len(data) / 1e6:5.1f} MB: read {row['read_items_per_s']:>7}/s   "
            f"first run {row['first_run_items_per_s']:>7}/s   repeat {row['repeat_run_items_per_s']:>7}/s"
        )
    out = ROOT / "benchmarks" / "results" / f"content_connectors_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps({"machine": platform.node(), "cpus": os.cpu_count(), "results": results}, indent=2))
    print(f"written to {out.relative_to(ROOT)}")
    stop_postgres()
    stop_redis()


if __name__ == "__main__":
    main()
