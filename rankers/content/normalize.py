"""From whatever a connector read to one ``NormalizedPost``: pure functions, no ORM, no network.

Each mapper takes one raw item (a feedparser entry, a Reddit listing child, a dataset row) and returns a
``NormalizedPost`` or raises ``Skip`` with the reason the item cannot be a candidate post.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from rankers.validation import MAX_URL_LENGTH, is_http_url

MAX_POST_ID = 255
MAX_AUTHOR = 255
MAX_TITLE = 1_000
MAX_TEXT = 20_000
MAX_ALT_TEXT = 5_000
# Relative permalinks in exports (Reddit's "/r/x/comments/...") are read against the platform's site.
PLATFORM_SITES = {
    "reddit": "https://www.reddit.com",
    "twitter": "https://x.com",
    "facebook": "https://www.facebook.com",
}
# Query parameters that only track who shared a link; the same article with and without them is one post.
TRACKING_PARAMS = re.compile(r"^(utm_[a-z]+|fbclid|gclid|mc_cid|mc_eid|igshid|ref_src|cmpid)$", re.IGNORECASE)
WHITESPACE = re.compile(r"[ \t\r\f\v]+")
BLANK_LINES = re.compile(r"\n\s*\n+")


class Skip(Exception):
    """This item is not a usable candidate post; the message says why."""


@dataclass(frozen=True)
class NormalizedPost:
    post_id: str
    url: str
    author: str
    title: str
    text: str
    media_alt_text: str
    created_at: dt.datetime | None


def canonical_url(url: str, *, base: str = "") -> str:
    """The post's public address: absolute, http(s), without fragment or tracking parameters.

    Raises ``Skip`` when there is none. ``base`` resolves relative links (a permalink in an export).
    """
    url = (url or "").strip()
    if base and url.startswith("/"):
        url = urljoin(base, url)
    if not is_http_url(url):
        raise Skip("no public http(s) URL")
    parts = urlsplit(url)
    # Split by hand rather than parse and re-encode: the parameters kept stay byte for byte as written, so a
    # link with tracking parameters and the same link without them give the same address.
    kept = [pair for pair in parts.query.split("&") if pair and not TRACKING_PARAMS.match(pair.split("=", 1)[0])]
    query = "&".join(kept)
    url = urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", query, ""))
    if len(url.encode()) > MAX_URL_LENGTH:
        raise Skip(f"URL longer than {MAX_URL_LENGTH} bytes")
    return url


def stable_post_id(post_id: str, url: str) -> str:
    """The platform's id when it gave one, else the URL; hashed when too long for the column."""
    key = (post_id or "").strip() or url
    return key if len(key) <= MAX_POST_ID else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def parse_time(value: Any) -> dt.datetime | None:
    """A timestamp as exports write it, in UTC; None when absent or unreadable.

    Reads ISO 8601, RFC 2822 (RSS), Twitter's ``Wed Oct 10 20:19:24 +0000 2018``, and epoch seconds or
    milliseconds (as numbers or digit strings). A time without zone is UTC.
    """
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value.strip())):
        seconds = float(value)
        seconds = seconds / 1000 if seconds > 1e11 else seconds  # milliseconds since 1973
        try:
            return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    return _parse_time_text(value.strip())


def _parse_time_text(text: str) -> dt.datetime | None:
    parsed: dt.datetime | None = None
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            try:
                parsed = dt.datetime.strptime(text, "%a %b %d %H:%M:%S %z %Y")
            except ValueError:
                return None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def struct_time_to_datetime(value: time.struct_time | None) -> dt.datetime | None:
    """feedparser's ``*_parsed`` fields are UTC ``struct_time``s."""
    return dt.datetime(*value[:6], tzinfo=dt.UTC) if value else None


class _TextAndAlts(HTMLParser):
    BLOCKS = frozenset({"p", "br", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "tr"})
    HIDDEN = frozenset({"script", "style", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.alts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt and alt.strip():
                self.alts.append(alt.strip())

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def html_to_text(html: str) -> tuple[str, list[str]]:
    """The readable text of an HTML fragment (paragraphs kept as blank lines) and its images' alt texts."""
    parser = _TextAndAlts()
    parser.feed(html or "")
    parser.close()
    return tidy("".join(parser.parts)), parser.alts


def tidy(text: str) -> str:
    lines = (WHITESPACE.sub(" ", line).strip() for line in (text or "").split("\n"))
    return BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def build_post(
    *, post_id: str, url: str, author: str, title: str, text: str, alts: Iterable[str], created_at: dt.datetime | None
) -> NormalizedPost:
    """Bound every field and refuse a post with nothing to read. ``url`` must be canonical already."""
    title, text = _clip(title.strip(), MAX_TITLE), _clip(text.strip(), MAX_TEXT)
    if not title and not text:
        raise Skip("no title and no text")
    alt_text = "\n".join(dict.fromkeys(alt.strip() for alt in alts if alt and alt.strip()))
    return NormalizedPost(
        post_id=stable_post_id(post_id, url),
        url=url,
        author=_clip(author.strip(), MAX_AUTHOR),
        title=title,
        text=text,
        media_alt_text=_clip(alt_text, MAX_ALT_TEXT),
        created_at=created_at,
    )


# --- RSS and Atom (feedparser entries) ---------------------------------------------------------


def from_feed_entry(entry: Mapping[str, Any], *, source_name: str) -> NormalizedPost:
    url = canonical_url(str(entry.get("link") or ""))
    title, title_alts = html_to_text(str(entry.get("title") or ""))
    contents = entry.get("content") or []
    body = str(contents[0].get("value") or "") if contents else str(entry.get("summary") or "")
    text, alts = html_to_text(body)
    return build_post(
        post_id=str(entry.get("id") or ""),
        url=url,
        author=str(entry.get("author") or source_name),
        title=title,
        text=text if text != title else "",
        alts=[*title_alts, *alts],
        created_at=struct_time_to_datetime(entry.get("published_parsed") or entry.get("updated_parsed")),
    )


# --- Reddit listing JSON -----------------------------------------------------------------------


def from_reddit_child(child: Any) -> NormalizedPost:
    """One child of a listing's ``data.children``: posts (``t3``) only, never NSFW or pinned ones."""
    if not isinstance(child, Mapping) or child.get("kind") != "t3" or not isinstance(child.get("data"), Mapping):
        raise Skip("not a Reddit post (kind t3)")
    data = child["data"]
    if data.get("over_18"):
        raise Skip("marked NSFW")
    if data.get("stickied"):
        raise Skip("pinned by the moderators")
    url = canonical_url(str(data.get("permalink") or ""), base=PLATFORM_SITES["reddit"])
    gallery = (data.get("gallery_data") or {}).get("items") or []
    return build_post(
        post_id=str(data.get("name") or data.get("id") or ""),
        url=url,
        author=str(data.get("author") or ""),
        title=str(data.get("title") or ""),
        text=str(data.get("selftext") or ""),
        alts=[str(item.get("caption") or "") for item in gallery if isinstance(item, Mapping)],
        created_at=parse_time(data.get("created_utc")),
    )


# --- dataset exports (Apify-style CSV, JSON lines or JSON arrays) --------------------------------

# Field names scraping services use, first match wins. Nested fields are flattened as CSV exports write
# them ("author/userName"), so a JSON line and a CSV row of the same export read alike.
POST_ID_FIELDS = ("id", "postId", "post_id", "tweetId", "id_str")
URL_FIELDS = ("url", "postUrl", "post_url", "link", "twitterUrl", "permalink")
AUTHOR_FIELDS = (
    "author/userName",
    "author/name",
    "user/userName",
    "user/name",
    "username",
    "userName",
    "authorName",
    "author",
    "pageName",
    "communityName",
)
TEXT_FIELDS = ("text", "fullText", "full_text", "body", "message", "postText", "selftext", "content", "description")
TITLE_FIELDS = ("title",)
CREATED_FIELDS = ("createdAt", "created_at", "created_utc", "timestamp", "time", "date", "publishedAt", "published")
ALT_FIELD_NAMES = frozenset({"alt", "alttext", "alt_text", "accessibilitycaption", "accessibility_caption"})
DATASET_COLUMNS = frozenset(URL_FIELDS)


def flatten(row: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"author": {"name": "x"}, "media": [{"alt": "y"}]}`` → ``{"author/name": "x", "media/0/alt": "y"}``."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}/"))
        elif isinstance(value, list):
            flat.update(flatten({str(i): v for i, v in enumerate(value)}, f"{name}/"))
        else:
            flat[name] = value
    return flat


def _first(row: Mapping[str, Any], names: Iterable[str]) -> str:
    for name in names:
        value = row.get(name)
        if value not in (None, ""):
            return str(value)
    return ""


def _alt_texts(row: Mapping[str, Any]) -> list[str]:
    return [
        str(value)
        for key, value in row.items()
        if value not in (None, "") and key.rsplit("/", 1)[-1].lower() in ALT_FIELD_NAMES
    ]


def from_dataset_row(row: Mapping[str, Any], *, platform: str) -> NormalizedPost:
    """One item of a dataset export, nested (JSON) or flattened with ``/`` (CSV)."""
    flat = flatten(row)
    url = canonical_url(_first(flat, URL_FIELDS), base=PLATFORM_SITES.get(platform, ""))
    return build_post(
        post_id=_first(flat, POST_ID_FIELDS),
        url=url,
        author=_first(flat, AUTHOR_FIELDS),
        title=_first(flat, TITLE_FIELDS),
        text=_first(flat, TEXT_FIELDS),
        alts=_alt_texts(flat),
        created_at=parse_time(_first(flat, CREATED_FIELDS)),
    )
