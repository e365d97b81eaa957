"""Entry links for a recruitment source: the link to give the vendor, and signed "try it" links.

The vendor link carries the vendor's own placeholder for its respondent id (``{{%PROLIFIC_PID%}}`` for
Prolific...), which the vendor fills in for each person. A "try it" link carries a made-up test id, the
``prc_test`` marker (a Django signature over the source and that id, so a participant cannot make one),
and, when the source has a signing secret, the ``sig`` the vendor would add. ``/join`` turns a link with
a valid marker into a *test participant*.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import quote

from django.core import signing
from django.urls import reverse

from participants.models import RecruitmentSource
from participants.vendors import SIGNATURE_PARAM, id_placeholder, sign_query

TEST_PARAM = "prc_test"
TEST_SALT = "participants.test-link"
TEST_LINK_MAX_AGE_S = 7 * 24 * 3600


@dataclass(frozen=True)
class SourceLinks:
    vendor_link: str  # with the vendor's placeholder; ``sig`` described, not computed
    signed: bool
    placeholder: str
    try_link: str
    test_id: str


def entry_path(source: RecruitmentSource) -> str:
    return reverse("participants:join-study", kwargs={"study_slug": source.study.slug, "source_slug": source.slug})


def test_marker(source: RecruitmentSource, vendor_pid: str) -> str:
    return signing.dumps([source.pk, vendor_pid], salt=TEST_SALT, compress=True)


def is_test_entry(source: RecruitmentSource, vendor_pid: str, marker: str) -> bool:
    """Whether ``marker`` is a researcher's "try it" marker for this source and id, made in the last week."""
    if not marker:
        return False
    try:
        value = signing.loads(marker, salt=TEST_SALT, max_age=TEST_LINK_MAX_AGE_S)
    except signing.BadSignature:
        return False
    return value == [source.pk, vendor_pid]


def try_query(source: RecruitmentSource, vendor_pid: str) -> str:
    query = f"{quote(source.pid_param)}={quote(vendor_pid, safe='')}"
    query += f"&{TEST_PARAM}={quote(test_marker(source, vendor_pid), safe='')}"
    if source.signing_secret:
        query += f"&{SIGNATURE_PARAM}={sign_query(query, source.signing_secret)}"
    return query


def source_links(source: RecruitmentSource, base_url: str) -> SourceLinks:
    """Both links of a source; ``base_url`` is the site's scheme and host, e.g. ``https://prc.example.org``."""
    placeholder = id_placeholder(source.vendor)
    url = base_url.rstrip("/") + entry_path(source)
    vendor_link = f"{url}?{source.pid_param}={placeholder}"
    if source.signing_secret:
        vendor_link += f"&{SIGNATURE_PARAM}=HMAC_SHA256_HEX"
    test_id = "test-" + secrets.token_hex(4)
    return SourceLinks(
        vendor_link=vendor_link,
        signed=bool(source.signing_secret),
        placeholder=placeholder,
        try_link=f"{url}?{try_query(source, test_id)}",
        test_id=test_id,
    )
