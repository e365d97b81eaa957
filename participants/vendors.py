"""Panel-vendor links: signature checks and outbound redirect URLs (pure functions)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import quote, unquote, unquote_plus, unquote_to_bytes

SIGNATURE_PARAM = "sig"
ERASED = "erased"


def unsigned_query(query_string: str) -> str:
    """The raw query string without its ``sig`` parameter, other parameters in their original order and encoding.

    Vendors sign exactly the bytes they send, so we must not decode and re-encode before checking.
    """
    parts = [part for part in query_string.split("&") if part and part.split("=", 1)[0] != SIGNATURE_PARAM]
    return "&".join(parts)


def sign_query(query_string: str, secret: str) -> str:
    """HMAC-SHA256 hex of the query string (without ``sig``) under the source's secret."""
    return hmac.new(secret.encode(), unsigned_query(query_string).encode(), hashlib.sha256).hexdigest()


def signature_is_valid(query_string: str, signature: str, secret: str) -> bool:
    if not signature:
        return False
    return hmac.compare_digest(sign_query(query_string, secret), signature.strip().lower())


def outbound_url(template: str, vendor_pid: str) -> str:
    """The vendor's redirect template with ``{pid}`` replaced by the URL-encoded vendor id."""
    return template.replace("{pid}", quote(vendor_pid, safe=""))


def scrub_url(url: str, vendor_pid: str) -> str:
    """``url`` with the vendor id replaced by ``erased`` wherever it is a whole query value or path segment.

    Values are compared decoded (``%20``, ``+`` and raw forms alike); the rest of the link keeps its bytes.
    """
    if not vendor_pid:
        return url
    rest, hash_mark, fragment = url.partition("#")
    base, question_mark, query = rest.partition("?")
    segments = [ERASED if unquote(segment) == vendor_pid else segment for segment in base.split("/")]
    pairs = []
    for pair in query.split("&") if question_mark else []:
        name, equals, value = pair.partition("=")
        pairs.append(f"{name}={ERASED}" if equals and unquote_plus(value) == vendor_pid else pair)
    if fragment and unquote_plus(fragment) == vendor_pid:
        fragment = ERASED
    return "/".join(segments) + question_mark + "&".join(pairs) + hash_mark + fragment


def scrub_params(params: Any, vendor_pid: str) -> Any:
    """Stored link parameters (a dict of value lists) with every value equal to the vendor id replaced."""
    if isinstance(params, dict):
        return {key: scrub_params(value, vendor_pid) for key, value in params.items()}
    if isinstance(params, list):
        return [scrub_params(value, vendor_pid) for value in params]
    return ERASED if params == vendor_pid else params


# How each vendor writes "this respondent's id" in the links it sends (its own merge-field syntax).
VENDOR_ID_PLACEHOLDERS: dict[str, tuple[str, str]] = {
    "prolific": ("Prolific", "{{%PROLIFIC_PID%}}"),
    "cint": ("Cint / Lucid", "[%RID%]"),
    "purespectrum": ("PureSpectrum", "[%%transaction_id%%]"),
    "qualtrics": ("Qualtrics panel (embedded data)", "${e://Field/pid}"),
    "other": ("Other vendor or ad channel", "VENDOR_ID"),
}
VENDOR_CHOICES = [(key, label) for key, (label, _) in VENDOR_ID_PLACEHOLDERS.items()]


def id_placeholder(vendor: str) -> str:
    return VENDOR_ID_PLACEHOLDERS.get(vendor, VENDOR_ID_PLACEHOLDERS["other"])[1]


def query_is_clean(query_string: str) -> bool:
    """Whether a link's query string decodes to UTF-8 text without NUL or other control characters.

    Django would decode such a link with replacement characters (or keep the NUL, which PostgreSQL
    cannot store); a vendor never sends either, so the link is refused rather than half-read.
    """
    try:
        text = unquote_to_bytes(query_string.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(ord(char) < 32 or ord(char) == 127 for char in text)


def storable_link(url: str) -> str:
    """A link as received, percent-encoded where it holds bytes a database column should not (NUL, controls,
    non-ASCII): the exact bytes stay recoverable, and nothing in it can be refused by PostgreSQL."""
    return quote(url, safe=":/?#[]@!$&'()*+,;=%~")
