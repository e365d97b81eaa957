"""prc_site.lib.seeded: the one source of reproducible draws."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prc_site.lib.seeded import seeded_int


@given(seed=st.text(max_size=30), message=st.text(max_size=30), upper=st.integers(min_value=1, max_value=10**9))
def test_a_seeded_int_is_in_range_and_the_same_every_time(seed: str, message: str, upper: int) -> None:
    value = seeded_int(seed, message, upper)
    assert 0 <= value < upper
    assert value == seeded_int(seed, message, upper)


def test_a_seeded_int_is_the_first_eight_bytes_of_the_hmac() -> None:
    digest = hmac.new(b"seed", b"stratum|0|3", hashlib.sha256).digest()
    assert seeded_int("seed", "stratum|0|3", 1000) == int.from_bytes(digest[:8], "big") % 1000


def test_a_seeded_int_needs_a_positive_bound() -> None:
    with pytest.raises(ValueError, match="positive"):
        seeded_int("seed", "x", 0)
