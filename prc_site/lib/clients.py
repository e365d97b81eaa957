"""Which address a request came from, for limits per client address (``/rank``'s unknown tokens, ``/join``)."""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings


def client_address(headers: Mapping[str, str], peer: str) -> str:
    """The peer's address, or, behind a proxy that sets it, the header ``PRC_CLIENT_IP_HEADER`` names.

    Only a header the proxy itself sets can be trusted; with ``X-Forwarded-For`` that is its last entry
    (the address the proxy saw), never the first (which the client writes).
    """
    name = settings.PRC_CLIENT_IP_HEADER
    if not name:
        return peer
    value = headers.get(name.lower(), "")
    return value.rsplit(",", 1)[-1].strip() or peer
