"""Fetching one source into the inventory, recorded as a ``ConnectorRun``. Safe to run twice.

``fetch_source`` steps:

1. Claim the source: fail runs left ``running`` past ``RUN_LEASE`` (a dead worker), then insert this run;
   the partial unique constraint lets only one run per source be in flight, so a second claim returns None.
2. Read the document (given bytes, or fetched from the source's address) into normalized posts.
3. Upsert the posts in batches with ``ON CONFLICT DO NOTHING``: a post already stored under the same
   platform and post id, or the same platform and URL, is a duplicate and stays as it was.
4. Record the counts and the first reasons items were skipped. A document that cannot be read, or that has
   items but none usable, fails the run with its reason; nothing stored is touched.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from rankers.content import connectors
from rankers.content.connectors import ConnectorError, Read, Skipped
from rankers.content.models import Connector, ConnectorRun, ContentSource
from rankers.content.normalize import NormalizedPost

logger = logging.getLogger(__name__)

RUN_LEASE = dt.timedelta(minutes=30)  # far above a fetch's timeout and a large file's import
MAX_ITEM_ERRORS = 50
UPSERT_BATCH = 2_000


def fetch_source(
    *, source_id: int, trigger: str = "schedule", data: bytes | None = None, url: str = ""
) -> ConnectorRun | None:
    """Fetch one source (or read ``data``, or fetch ``url`` instead of its address); None if a run is in flight."""
    source = ContentSource.objects.get(pk=source_id)
    run = claim_run(source, trigger=trigger)
    if run is None:
        return None
    try:
        if data is None:
            location = url or source.location
            if not location:
                raise ConnectorError("the source has no address to fetch; import a file by hand")
            data = connectors.fetch_bytes(location)
        posts, skipped = read_document(source, data)
        if skipped and not posts:
            raise ConnectorError(f"no usable item: all {len(skipped)} were skipped (first: {skipped[0].reason})")
    except ConnectorError as exc:
        return finish_run(run, error=str(exc))
    except Exception as exc:
        finish_run(run, error=f"internal error: {type(exc).__name__}: {exc}")
        raise
    new = store_posts(source, posts)
    return finish_run(run, read=len(posts) + len(skipped), new=new, duplicate=len(posts) - new, skipped=skipped)


def read_document(source: ContentSource, data: bytes) -> Read:
    if source.connector == Connector.RSS:
        return connectors.read_feed(data, source_name=source.name)
    if source.connector == Connector.REDDIT:
        return connectors.read_reddit_listing(data)
    return connectors.read_dataset(data, platform=source.platform)


def claim_run(source: ContentSource, *, trigger: str, now: dt.datetime | None = None) -> ConnectorRun | None:
    now = now or timezone.now()
    ConnectorRun.objects.filter(
        source=source, status=ConnectorRun.Status.RUNNING, started_at__lt=now - RUN_LEASE
    ).update(status=ConnectorRun.Status.FAILED, finished_at=now, error="abandoned: the worker stopped mid-run")
    try:
        with transaction.atomic():
            return ConnectorRun.objects.create(
                source=source, connector=source.connector, trigger=trigger, started_at=now
            )
    except IntegrityError:
        logger.info("content source %s: a run is already in flight", source.pk)
        return None


def finish_run(
    run: ConnectorRun,
    *,
    error: str = "",
    read: int = 0,
    new: int = 0,
    duplicate: int = 0,
    skipped: Sequence[Skipped] = (),
) -> ConnectorRun:
    run.status = ConnectorRun.Status.FAILED if error else ConnectorRun.Status.SUCCEEDED
    run.error = error
    run.finished_at = timezone.now()
    run.items_read, run.items_new, run.items_duplicate, run.items_skipped = read, new, duplicate, len(skipped)
    run.item_errors = [{"item": s.item, "reason": s.reason} for s in skipped[:MAX_ITEM_ERRORS]]
    run.save()
    if error:
        logger.warning("content source %s: run %s failed: %s", run.source_id, run.pk, error)
    return run


# --- the upsert --------------------------------------------------------------------------------

_INSERT = """
INSERT INTO rankers_candidatepost
    (source_id, platform, post_id, url, author, title, text, media_alt_text, created_at, first_seen_at)
SELECT %s, %s, post_id, url, author, title, text, alt, created_at, %s
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[])
    AS item(post_id, url, author, title, text, alt, created_at)
ON CONFLICT DO NOTHING
RETURNING 1
"""


def store_posts(source: ContentSource, posts: Sequence[NormalizedPost], *, now: dt.datetime | None = None) -> int:
    """Insert the posts not stored yet (by platform and post id, or platform and URL); returns how many."""
    now = now or timezone.now()
    new = 0
    with connection.cursor() as cursor:
        for start in range(0, len(posts), UPSERT_BATCH):
            batch = posts[start : start + UPSERT_BATCH]
            cursor.execute(
                _INSERT,
                [
                    source.pk,
                    source.platform,
                    now,
                    [p.post_id for p in batch],
                    [p.url for p in batch],
                    [p.author for p in batch],
                    [p.title for p in batch],
                    [p.text for p in batch],
                    [p.media_alt_text for p in batch],
                    [p.created_at for p in batch],
                ],
            )
            new += len(cursor.fetchall())
    return new
