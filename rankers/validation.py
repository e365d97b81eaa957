"""Lenient parsing of PRC ranking requests.

The session is validated strictly (without it nothing can be ranked); items are
checked one by one, so one malformed item never costs the whole feed. A bad item
keeps its place in the feed but is not ranked, and the reason is recorded.
Unknown fields are ignored. Pure: no ORM, no Django.
"""

from __future__ import annotations

import datetime as dt
import gzip
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError
from ranking_challenge.request import Session

from rankers.plugins.base import SlateItem

MAX_URL_LENGTH = 2083
ITEM_TYPES = ("post", "comment")
REQUIRED_ITEM_FIELDS = ("text", "type", "author_name_hash", "created_at", "engagements")
# Reddit's score is a sum of up- and downvotes and may be negative; every other count may not.
SIGNED_COUNTS = frozenset({"score"})


class RequestError(Exception):
    """The request as a whole cannot be ranked (400/413)."""

    def __init__(self, code: str, message: str, *, status: int = 400, field: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.field = field


@dataclass(slots=True)
class ParsedItem:
    """One request item as it came in; ``item`` is None when it cannot be ranked. Read-only by convention
    (not frozen, for the same reason as ``SlateItem``)."""

    id: str
    raw: Mapping[str, Any]
    item: SlateItem | None
    invalid_reason: str = ""
    immovable: bool = False  # ads and items without text keep their position


@dataclass(frozen=True)
class ParsedRequest:
    session: Session
    items: list[ParsedItem]
    # Item problems that do not keep an id in the feed (no id at all, repeated id): index -> reason.
    dropped: dict[str, str] = field(default_factory=dict)
    # Which of the platform's passes (Table S11) the extension says this is; None: inferred from the items.
    slate_pass: int | None = None

    @property
    def invalid(self) -> dict[str, str]:
        reasons = {p.id: p.invalid_reason for p in self.items if p.invalid_reason}
        return {**reasons, **self.dropped}


def decode_body(body: bytes, content_encoding: str, *, max_bytes: int) -> bytes:
    """Undo gzip/deflate, refusing anything that inflates past ``max_bytes``."""
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise RequestError("unsupported_encoding", f"Content-Encoding {encoding!r} is not supported.", status=415)
    wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
    decompressor = zlib.decompressobj(wbits)
    try:
        data = decompressor.decompress(body, max_bytes + 1)
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise RequestError("bad_encoding", "The body is not valid compressed data.") from exc
    if len(data) > max_bytes or decompressor.unconsumed_tail:
        raise RequestError("too_large", f"The body is larger than {max_bytes} bytes.", status=413)
    if not decompressor.eof:  # cut short: what inflated may still parse, but it is not what was sent
        raise RequestError("bad_encoding", "The compressed body ends before its end marker.")
    return data


def parse_request(body: bytes) -> ParsedRequest:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError("malformed_json", "The body is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise RequestError("invalid", "The body must be a JSON object.")
    session = _parse_session(data.get("session"))
    raw_items = data.get("items")
    if not isinstance(raw_items, list):
        raise RequestError("invalid", "items must be a list.", field="items")
    items: list[ParsedItem] = []
    dropped: dict[str, str] = {}
    seen: set[str] = set()
    for index, raw in enumerate(raw_items):
        item_id = raw.get("id") if isinstance(raw, dict) else None
        if isinstance(item_id, int) and not isinstance(item_id, bool):
            item_id = str(item_id)
        if not isinstance(item_id, str) or not item_id:
            dropped[f"#{index}"] = "missing_id"
        elif item_id in seen:
            dropped[f"#{index}"] = f"repeated_id:{item_id}"
        else:
            seen.add(item_id)
            items.append(parse_item(item_id, raw, session.platform))
    slate_pass = data.get("slate_pass")
    if slate_pass is not None and (type(slate_pass) is not int or slate_pass < 1):
        dropped["slate_pass"], slate_pass = "bad_slate_pass", None  # the pass is then inferred, never the feed lost
    return ParsedRequest(session=session, items=items, dropped=dropped, slate_pass=slate_pass)


def _parse_session(raw: object) -> Session:
    if not isinstance(raw, dict):
        raise RequestError("invalid", "session is required.", field="session")
    try:
        return Session.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in ("session", *first["loc"]))
        raise RequestError("invalid", f"{where}: {first['msg']}", field=where) from None


def parse_item(item_id: str, raw: Mapping[str, Any], platform: str) -> ParsedItem:
    try:
        item = _slate_item(item_id, raw, platform)
    except ValueError as exc:
        return ParsedItem(id=item_id, raw=raw, item=None, invalid_reason=str(exc), immovable=True)
    immovable = is_ad(raw) or not item.has_text
    return ParsedItem(id=item_id, raw=raw, item=item, immovable=immovable)


def is_ad(raw: Mapping[str, Any]) -> bool:
    return raw.get("is_ad") is True or raw.get("type") == "ad"


def _slate_item(item_id: str, raw: Mapping[str, Any], platform: str) -> SlateItem:
    get = raw.get  # this runs for every item of every request: plain local reads, no per-item lists
    text, item_type, author, created_at, engagements = (
        get("text"), get("type"), get("author_name_hash"), get("created_at"), get("engagements"),
    )  # fmt: skip
    if text is None or item_type is None or author is None or created_at is None or engagements is None:
        raise ValueError(f"missing_field:{next(name for name in REQUIRED_ITEM_FIELDS if get(name) is None)}")
    title = get("title")
    if not isinstance(text, str) or not (title is None or isinstance(title, str)):
        raise ValueError("bad_text")
    if item_type not in ITEM_TYPES and item_type != "ad":
        raise ValueError("bad_type")
    if not isinstance(author, str):
        raise ValueError("bad_author_name_hash")
    language = get("language")
    urls = get("embedded_urls")
    return SlateItem(
        id=item_id,
        text=text,
        type="post" if item_type == "ad" else item_type,
        title=title,
        post_id=_optional_id(get("post_id")),
        parent_id=_optional_id(get("parent_id")),
        author_name_hash=author,
        created_at=parse_timestamp(created_at),
        engagements=_engagements(engagements),
        embedded_urls=tuple(_urls(urls)) if urls else (),
        language=language if isinstance(language, str) else None,
    )


def _optional_id(value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | str):
        return str(value)
    raise ValueError("bad_id_reference")


def parse_timestamp(value: object) -> dt.datetime:
    """ISO 8601 or ``YYYY-MM-DD hh:mm:ss`` (naive means UTC), or epoch seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return dt.datetime.fromtimestamp(value, tz=dt.UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError("bad_created_at") from None
    if not isinstance(value, str):
        raise ValueError("bad_created_at")
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError("bad_created_at") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _engagements(raw: object) -> dict[str, int]:
    if not isinstance(raw, dict):
        raise ValueError("bad_engagements")
    counts: dict[str, int] = {}
    for name, value in raw.items():
        if type(value) is int and value >= 0:  # the usual case
            counts[name] = value
            continue
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"bad_count:{name}")
        if value < 0 and name not in SIGNED_COUNTS:
            raise ValueError(f"negative_count:{name}")
        counts[str(name)] = int(value)
    return counts


def _urls(raw: object) -> list[str]:
    if raw is None or raw == []:
        return []
    if not isinstance(raw, list):
        raise ValueError("bad_embedded_urls")
    for url in raw:
        if not is_http_url(url):
            raise ValueError("bad_url")
    return list(raw)


_HTTP_URL = re.compile(r"https?://([^/?#]*)", re.IGNORECASE)


def is_http_url(url: object) -> bool:
    """An absolute http(s) URL with a host, at most MAX_URL_LENGTH long.

    A regular expression instead of ``urlsplit``: this runs for every embedded
    URL of every item on the hot path, and ``urlsplit`` was a tenth of its time.
    """
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        return False
    match = _HTTP_URL.match(url)
    if match is None:
        return False
    host = match[1].rpartition("@")[2]  # drop user:password@
    if host.startswith("["):  # an IPv6 literal
        return host.find("]") > 1
    return bool(host.partition(":")[0])
