"""``manage.py fetch_content``: the content pipeline's beat jobs by hand, and file or URL imports.

manage.py fetch_content --connector rss            # every active RSS source, as beat does
manage.py fetch_content --source 12 --source 14    # these sources, from their addresses
manage.py fetch_content --source 12 --file x.jsonl # a dataset export from disk into source 12
manage.py fetch_content --source 12 --url https://api.apify.com/v2/datasets/…/items?format=jsonl
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from rankers.content import services
from rankers.content.models import Connector, ContentSource
from rankers.validation import is_http_url


class Command(BaseCommand):
    help = "Fetch content sources into the candidate-post inventory now, in this process, and print each run."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--connector", choices=Connector.values, help="Every active source of this connector.")
        parser.add_argument("--source", type=int, action="append", default=[], help="A source id (repeatable).")
        parser.add_argument("--file", type=Path, help="Read this file instead of fetching (one --source).")
        parser.add_argument("--url", help="Fetch this address instead of the source's own (one --source).")

    def handle(self, *args: Any, **options: Any) -> None:
        source_ids: list[int] = options["source"]
        file, url = options["file"], options["url"]
        if bool(options["connector"]) == bool(source_ids):
            raise CommandError("Give either --connector or --source.")
        if (file or url) and len(source_ids) != 1:
            raise CommandError("--file and --url import into exactly one --source.")
        if file and url:
            raise CommandError("Give --file or --url, not both.")
        if url and not is_http_url(url):
            raise CommandError("--url must be an http or https address.")
        if options["connector"]:
            source_ids = list(ContentSource.objects.fetched_by(options["connector"]).values_list("pk", flat=True))
        missing = set(source_ids) - set(ContentSource.objects.filter(pk__in=source_ids).values_list("pk", flat=True))
        if missing:
            raise CommandError(f"No content source with id {', '.join(map(str, sorted(missing)))}.")
        data = self._read(file) if file else None
        failed = 0
        for source_id in source_ids:
            run = services.fetch_source(
                source_id=source_id, trigger="file" if file else "manual", data=data, url=url or ""
            )
            if run is None:
                self.stdout.write(f"source {source_id}: skipped, a run is already in flight")
                continue
            failed += run.status == run.Status.FAILED
            self.stdout.write(
                f"source {source_id}: {run.status}; read {run.items_read}, new {run.items_new}, "
                f"duplicate {run.items_duplicate}, skipped {run.items_skipped}"
                + (f"; {run.error}" if run.error else "")
            )
        if failed:
            raise CommandError(f"{failed} of {len(source_ids)} runs failed.")

    @staticmethod
    def _read(path: Path) -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from exc
