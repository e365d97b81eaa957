"""The keyed hash: stable under one salt, different under another, different per purpose."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from prc_site.lib.hashing import keyed_hash


@given(st.text(max_size=40))
def test_the_same_value_hashes_the_same_and_never_shows_in_the_hash(value: str) -> None:
    digest = keyed_hash(value, purpose="vendor_pid")
    assert digest == keyed_hash(value, purpose="vendor_pid")
    assert len(digest) == 64
    assert digest != keyed_hash(value, purpose="ip")


def test_another_salt_gives_another_hash(settings) -> None:
    before = keyed_hash("RD-123", purpose="vendor_pid")
    settings.PRC_HASH_SALT = "another salt"
    assert keyed_hash("RD-123", purpose="vendor_pid") != before
