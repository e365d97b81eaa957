"""Piping: the party words of a question's wording, from the participant's party answers (pure).

The party is the answer to "party id" when it is Republican or Democrat, otherwise the answer to
"party leaner" (asked of everyone else, so every respondent who reaches the piped questions has one).
Follow-up waves take it from the baseline answers; the screener's party answer is the last resort.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from surveys.library import OTHER_PARTY, PARTY_WORDS

TOKEN = re.compile(r"\[(inparty|outparty)(?:_(member|adj|candidate))?\]|\[party_id\]")


def party_of(*sources: Mapping[str, Any]) -> str | None:
    """``republican`` or ``democrat`` from the first source that says so, else None."""
    for answers in sources:
        party = answers.get("party_id")
        if party in PARTY_WORDS:
            return str(party)
        leaner = answers.get("party_leaner")
        if leaner in PARTY_WORDS:
            return str(leaner)
        screener = answers.get("party")
        if screener in PARTY_WORDS:
            return str(screener)
    return None


def words_for(party: str | None) -> dict[str, str]:
    """Every token's text for this party; empty when the party is unknown (piped questions are then hidden)."""
    if party not in PARTY_WORDS:
        return {}
    inparty, outparty = PARTY_WORDS[party], PARTY_WORDS[OTHER_PARTY[party]]
    words = {"party_id": inparty["member"], "inparty_candidate": inparty["candidate"]}
    for side, forms in (("inparty", inparty), ("outparty", outparty)):
        words[side] = forms["plural"]
        words[f"{side}_member"] = forms["member"]
        words[f"{side}_adj"] = forms["adj"]
    return words


def needs_piping(text: str) -> bool:
    return TOKEN.search(text) is not None


def pipe(text: str, words: Mapping[str, str]) -> str:
    """``text`` with every token replaced; a token without a word is left as it is."""

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)[1:-1]
        return words.get(token, match.group(0))

    return TOKEN.sub(replace, text)
