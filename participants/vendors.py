"""Panel-vendor links: signature checks and outbound redirect URLs (pure functions)."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote

SIGNATURE_PARAM = "sig"


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
