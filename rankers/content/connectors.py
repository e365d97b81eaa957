"""Reading documents into raw items: HTTP fetches with deadlines, and the three document shapes.

``fetch_bytes`` raises ``ConnectorError`` for anything that makes a run fail (timeout, HTTP error, too
large); the ``read_*`` functions raise it for a document that is not what the connector expects (garbage,
HTML instead of XML or JSON) and otherwise return ``(posts, skipped)``, where each skipped item carries its
number (1-based position, or line number in a file) and the reason.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import feedparser
import httpx2
import orjson
from django.conf import settings

from rankers.content import normalize
from rankers.content.normalize import NormalizedPost, Skip


class ConnectorError(Exception):
    """The run cannot go on; the message is stored as its reason."""


@dataclass(frozen=True)
class Skipped:
    item: int
    reason: str


Read = tuple[list[NormalizedPost], list[Skipped]]


def fetch_bytes(url: str, *, client: httpx2.Client | None = None) -> bytes:
    """GET ``url`` within ``PRC_CONTENT_FETCH_TIMEOUT_S`` in all, refusing bodies over ``PRC_CONTENT_MAX_BYTES``.

    httpx's timeouts bound each read, so a server that trickles bytes is also held to the whole deadline.
    """
    limit, timeout_s = settings.PRC_CONTENT_MAX_BYTES, settings.PRC_CONTENT_FETCH_TIMEOUT_S
    deadline = time.monotonic() + timeout_s
    own = client is None
    client = client or httpx2.Client(
        timeout=httpx2.Timeout(timeout_s),
        follow_redirects=True,
        headers={"User-Agent": settings.PRC_CONTENT_USER_AGENT},
    )
    try:
        with client.stream("GET", url) as response:
            if response.status_code != 200:
                raise ConnectorError(f"HTTP {response.status_code} from {url}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > limit:
                    raise ConnectorError(f"response larger than {limit} bytes")
                if time.monotonic() > deadline:
                    raise ConnectorError(f"timed out after {timeout_s} s (the body was still arriving)")
            return bytes(body)
    except httpx2.TimeoutException as exc:
        raise ConnectorError(f"timed out after {timeout_s} s ({type(exc).__name__})") from exc
    except httpx2.HTTPError as exc:
        raise ConnectorError(f"could not fetch {url}: {type(exc).__name__}: {exc}") from exc
    finally:
        if own:
            client.close()


def _normalize_all(items: Iterable[tuple[int, Any]], mapper: Callable[[Any], NormalizedPost]) -> Read:
    posts: list[NormalizedPost] = []
    skipped: list[Skipped] = []
    for number, raw in items:
        try:
            posts.append(mapper(raw))
        except Skip as exc:
            skipped.append(Skipped(number, str(exc)))
    return posts, skipped


# --- RSS / Atom --------------------------------------------------------------------------------


def read_feed(data: bytes, *, source_name: str) -> Read:
    """An RSS or Atom document, parsed by feedparser (never by hand)."""
    parsed = feedparser.parse(data, sanitize_html=True, resolve_relative_uris=True)
    problem = f": {parsed.get('bozo_exception')}" if parsed.get("bozo") else ""
    if not parsed.get("version"):
        raise ConnectorError(f"not an RSS or Atom feed{problem}")
    entries = parsed.get("entries") or []
    if problem and not entries:
        raise ConnectorError(f"unreadable feed{problem}")
    return _normalize_all(enumerate(entries, start=1), lambda e: normalize.from_feed_entry(e, source_name=source_name))


# --- Reddit listing JSON -----------------------------------------------------------------------


def _json(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ConnectorError(f"not JSON: {exc}") from exc


def read_reddit_listing(data: bytes) -> Read:
    """``{"kind": "Listing", "data": {"children": [...]}}`` as Reddit's ``.json`` pages answer."""
    listing = _json(data)
    children = listing.get("data", {}).get("children") if isinstance(listing, dict) else None
    if not isinstance(listing, dict) or listing.get("kind") != "Listing" or not isinstance(children, list):
        raise ConnectorError("not a Reddit listing (expected kind Listing with data.children)")
    return _normalize_all(enumerate(children, start=1), normalize.from_reddit_child)


# --- dataset exports ---------------------------------------------------------------------------


def read_dataset(data: bytes, *, platform: str) -> Read:
    """A dataset export: a JSON array, JSON lines, or CSV with a header (nested columns as ``a/b``).

    Items are numbered by line for JSON lines and CSV, by position for a JSON array. A line that is not a
    JSON object is skipped with its reason; a file where nothing is readable fails the run.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConnectorError(f"not UTF-8 text: {exc}") from exc
    head = text.lstrip()[:1]
    if head == "<":
        raise ConnectorError("HTML or XML, not a dataset export (CSV, JSON lines or a JSON array)")
    mapper = _dataset_mapper(platform)
    if head == "[":
        rows = _json(data.lstrip(b"\xef\xbb\xbf"))
        if not isinstance(rows, list):
            raise ConnectorError("not a JSON array of items")
        return _normalize_all(enumerate(rows, start=1), mapper)
    if head == "{":
        return _read_json_lines(text, mapper)
    return _normalize_all(_csv_rows(text), mapper)


def _dataset_mapper(platform: str) -> Callable[[Any], NormalizedPost]:
    def mapper(row: Any) -> NormalizedPost:
        if not isinstance(row, dict):
            raise Skip("not a JSON object")
        return normalize.from_dataset_row(row, platform=platform)

    return mapper


def _read_json_lines(text: str, mapper: Callable[[Any], NormalizedPost]) -> Read:
    rows: list[tuple[int, Any]] = []
    unreadable: list[Skipped] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((number, orjson.loads(line)))
        except orjson.JSONDecodeError as exc:
            unreadable.append(Skipped(number, f"not JSON: {exc}"))
    if unreadable and not rows:
        raise ConnectorError(f"no line is a JSON object (line {unreadable[0].item}: {unreadable[0].reason})")
    posts, skipped = _normalize_all(rows, mapper)
    return posts, sorted([*unreadable, *skipped], key=lambda s: s.item)


def _csv_rows(text: str) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = set(reader.fieldnames or ())
    if not columns & normalize.DATASET_COLUMNS:
        raise ConnectorError(f"not a dataset export: no URL column ({', '.join(sorted(normalize.DATASET_COLUMNS))})")
    first_line = 2
    try:
        for row in reader:
            yield first_line, {key: value for key, value in row.items() if key is not None}
            first_line = reader.line_num + 1
    except csv.Error as exc:
        raise ConnectorError(f"unreadable CSV at line {reader.line_num}: {exc}") from exc
