"""Secrets handed to participants and the extension, and the one way to resolve an extension token.

Every secret is random, shown once, and stored only as its SHA-256: a database leak reveals no
usable token, status link or enrolment code.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

import psycopg
from django.conf import settings
from django.db.models import QuerySet
from psycopg.rows import dict_row

from participants.models import ExtensionInstall, Participant, sha256_hex

# No 0/O, 1/I/L: people type enrolment codes into the extension by hand.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 12  # 31**12 ≈ 2**59: unguessable within a code's lifetime.


EXTENSION_CHALLENGE = 'Bearer realm="extension"'  # the WWW-Authenticate of a 401 to the extension


def extension_token(headers: Mapping[str, str]) -> str:
    """The token a request carries: ``Authorization: Bearer <token>``, else ``X-Extension-Token``. ``headers``
    is Django's case-insensitive ``request.headers`` or an ASGI app's dict of lower-case names."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return headers.get("x-extension-token", "").strip()


def new_extension_token() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def new_status_key() -> str:
    return secrets.token_urlsafe(24)


def new_enrolment_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, CODE_LENGTH, 4))


def normalize_enrolment_code(code: str) -> str:
    """What people type (lower case, spaces, missing dashes) maps to one canonical form."""
    return "".join(ch for ch in code.upper() if ch.isalnum())


def hash_enrolment_code(code: str) -> str:
    return sha256_hex(normalize_enrolment_code(code))


def hash_ip(ip: str) -> str:
    """Salted so that the short space of IPv4 addresses cannot be reversed with a lookup table."""
    return sha256_hex(f"{settings.PRC_HASH_SALT}:{ip}") if ip else ""


def _install_query(token: str, include_uninstalled: bool) -> QuerySet[ExtensionInstall]:
    installs = ExtensionInstall.objects.select_related("participant__study", "participant__assignment__arm")
    installs = installs.filter(token_hash=ExtensionInstall.hash_token(token))
    return installs if include_uninstalled else installs.filter(uninstalled_at__isnull=True)


def participant_for_token(
    token: str, *, include_uninstalled: bool = False
) -> tuple[Participant, ExtensionInstall] | None:
    """The participant and install behind an extension token, or None (unknown token, or uninstalled).

    One indexed query (``token_hash`` is unique) that also loads the study and the assignment with
    its arm, so a caller can decide the effective arm without another round trip. An uninstalled
    install's token is dead unless ``include_uninstalled``. Withdrawn participants are returned
    too: callers must check ``participant.is_withdrawn`` (the ranking path still answers them, with
    the untouched feed, and stores nothing).
    """
    if not token:
        return None
    install = _install_query(token, include_uninstalled).first()
    return (install.participant, install) if install else None


async def aparticipant_for_token(
    token: str, *, include_uninstalled: bool = False
) -> tuple[Participant, ExtensionInstall] | None:
    """``participant_for_token`` for async views."""
    if not token:
        return None
    install = await _install_query(token, include_uninstalled).afirst()
    return (install.participant, install) if install else None


# Everything the ranking path needs about a token's participant, for many tokens in one round trip: the
# participant, when the extension was first installed (``enrolled_at``, which a reinstall keeps), the study's
# timing settings, whether the consent in force was given, the assigned arm and the study's control arm.
# Columns prefixed ``arm_``/``control_`` are NULL when there is no assignment / no control arm.
_ARM_COLUMNS = ("slug", "ranker_key", "is_control", "max_inserted", "max_deleted", "max_inserted_pct",
                "max_deleted_pct", "ranker_config", "starts_facebook", "starts_reddit", "starts_twitter")  # fmt: skip
ENROLMENTS_BY_TOKEN_HASH_SQL = f"""
SELECT i.token_hash, p.public_id, p.study_id, p.withdrawn_at, p.ranker_survey,
       COALESCE(p.enrolled_at, i.installed_at) AS installed_at,
       s.status = 'closed' AS study_closed, s.baseline_days, s.rank_hold_ms, s.ramp_days,
       p.withdrawn_at IS NULL AND EXISTS (
           SELECT 1 FROM participants_consentrecord cr
           WHERE cr.participant_id = p.id AND cr.document_id = (
               SELECT d.id FROM participants_consentdocument d
               WHERE d.study_id = p.study_id AND d.effective_at <= now()
               ORDER BY d.effective_at DESC, d.id DESC LIMIT 1)
       ) AS consent_ok,
       {", ".join(f"a.{c} AS arm_{c}" for c in _ARM_COLUMNS)},
       {", ".join(f"c.{c} AS control_{c}" for c in _ARM_COLUMNS)}
FROM participants_extensioninstall i
JOIN participants_participant p ON p.id = i.participant_id
JOIN participants_study s ON s.id = p.study_id
LEFT JOIN participants_assignment asg ON asg.participant_id = p.id
LEFT JOIN participants_arm a ON a.id = asg.arm_id
LEFT JOIN LATERAL (
    SELECT * FROM participants_arm c0 WHERE c0.study_id = p.study_id AND c0.is_control ORDER BY c0.id LIMIT 1
) c ON TRUE
WHERE i.token_hash = ANY(%s) AND i.uninstalled_at IS NULL
"""  # noqa: S608 (column names are constants above; the hashes are a parameter)


async def aenrolments_for_token_hashes(
    conn: psycopg.AsyncConnection[Any], token_hashes: list[str]
) -> dict[str, dict[str, Any]]:
    """``ENROLMENTS_BY_TOKEN_HASH_SQL`` for many token hashes at once: hash -> column-name dict.

    Unknown and uninstalled tokens are simply absent. Withdrawn participants are returned
    (``withdrawn_at`` set, ``consent_ok`` false): the ranking path answers them with the
    untouched feed and stores nothing.
    """
    if not token_hashes:
        return {}
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(ENROLMENTS_BY_TOKEN_HASH_SQL, (token_hashes,))
        return {row["token_hash"]: row for row in await cursor.fetchall()}
