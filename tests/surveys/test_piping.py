"""Piping (surveys/piping.py): which party each combination of answers gives, and the words it pipes."""

from __future__ import annotations

from typing import Any

import pytest

from surveys.piping import party_of, pipe, words_for

TEXT = "[inparty] / [outparty] / [inparty_member] / [outparty_member] / [outparty_adj] / [inparty_candidate]"


@pytest.mark.parametrize(
    ("sources", "party"),
    [
        (({"party_id": "republican"},), "republican"),
        (({"party_id": "democrat", "party_leaner": "republican"},), "democrat"),  # the party id comes first
        (({"party_id": "independent", "party_leaner": "republican"},), "republican"),
        (({"party_id": "no_preference", "party_leaner": "democrat"},), "democrat"),
        (({"party_id": "other", "party_id__write_in": "Green", "party_leaner": "democrat"},), "democrat"),
        (({}, {"party": "republican"}), "republican"),  # no baseline answers yet: the screener's
        (({"party_id": "democrat"}, {"party": "republican"}), "democrat"),  # the baseline before the screener
        (({"party_id": "independent"}, {"party": "other"}), None),
    ],
)
def test_each_party_answer_gives_the_party_the_paper_says(sources: tuple[dict[str, Any], ...], party: str) -> None:
    assert party_of(*sources) == party


@pytest.mark.parametrize(
    ("party", "piped"),
    [
        ("republican", "Republicans / Democrats / Republican / Democrat / Democratic / Trump"),
        ("democrat", "Democrats / Republicans / Democrat / Republican / Republican / Harris"),
        (None, TEXT),  # unknown: nothing is filled in (the question is hidden)
    ],
)
def test_every_token_is_piped_for_each_party(party: str | None, piped: str) -> None:
    assert pipe(TEXT, words_for(party)) == piped
