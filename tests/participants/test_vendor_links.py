"""Scrubbing a vendor id out of stored links (pure functions of participants/vendors.py)."""

from __future__ import annotations

from urllib.parse import quote, quote_plus

from hypothesis import given
from hypothesis import strategies as st

from participants.vendors import ERASED, outbound_url, scrub_params, scrub_url

vendor_ids = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20).filter(
    lambda pid: pid.strip() and pid != ERASED
)


@given(pid=vendor_ids)
def test_an_inbound_link_keeps_everything_but_the_vendor_id(pid: str) -> None:
    for encoded in (quote(pid, safe=""), quote_plus(pid)):
        url = f"https://prc.example/join/rep-data/?rid={encoded}&campaign=c7&sig=abc#top"
        assert scrub_url(url, pid) == "https://prc.example/join/rep-data/?rid=erased&campaign=c7&sig=abc#top"


@given(pid=vendor_ids)
def test_a_redirect_link_with_the_id_in_its_path_or_query_is_scrubbed(pid: str) -> None:
    url = outbound_url("https://vendor.example/{pid}/done?id={pid}&status=done", pid)
    expected = "https://vendor.example/erased/done?id=erased&status=" + ("erased" if pid == "done" else "done")
    assert scrub_url(url, pid) == expected


def test_a_value_that_only_contains_the_id_is_left_alone() -> None:
    assert scrub_url("https://v.example/?rid=ab&x=abc", "ab") == "https://v.example/?rid=erased&x=abc"


def test_stored_parameters_lose_the_id_in_every_list() -> None:
    params = {"rid": ["RD-1"], "other": ["RD-1", "keep"], "sig": ["f00"]}
    assert scrub_params(params, "RD-1") == {"rid": [ERASED], "other": [ERASED, "keep"], "sig": ["f00"]}
