"""Keyed hashes of values that must be recognisable again but never readable (vendor ids, IP addresses)."""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings


def keyed_hash(value: str, *, purpose: str) -> str:
    """HMAC-SHA256 of ``value`` under ``PRC_HASH_SALT``, as 64 hex digits.

    Without the salt the short spaces these values come from (vendor ids, IPv4 addresses) cannot be
    enumerated; ``purpose`` keeps the hashes of one kind of value from matching another's. Changing
    ``PRC_HASH_SALT`` makes every stored hash unrecognisable, so it is fixed for a deployment's life.
    """
    message = f"{purpose}\x00{value}".encode()
    return hmac.new(str(settings.PRC_HASH_SALT).encode(), message, hashlib.sha256).hexdigest()
