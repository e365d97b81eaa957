"""The in-feed question schedule of supplementary section 2, as pure functions (no ORM).

"Each survey appeared one week after the most recent previous appearance, and was shown on whatever
platform the user used first, up to three times on three consecutive days." For one participant:

1. The first prompt is due on the day the extension was installed (study-local days); each later one
   is due ``WEEK_DAYS`` after the day the previous prompt first appeared.
2. On the first day a platform asks for a question on or after the due day, a new prompt starts: its
   question is drawn with ``question_for`` and it is bound to that platform.
3. The prompt is offered, on its platform only, on the day it started and the two days after
   (``OFFER_DAYS``), until it is answered or dismissed; then nothing until the next one is due.

``question_for`` draws from the seed, the participant's id and the prompt's number in their sequence,
so the whole schedule can be redone from the record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from prc_site.lib.seeded import seeded_int

WEEK_DAYS = 7
OFFER_DAYS = 3


@dataclass(frozen=True)
class LastPrompt:
    """What the rule needs to know about a participant's latest prompt."""

    sequence: int
    first_shown_on: dt.date
    platform: str
    closed: bool  # answered or dismissed


@dataclass(frozen=True)
class Offer:
    """``continue`` the latest prompt, or ``start`` prompt number ``sequence``."""

    action: str
    sequence: int


def is_on_offer(first_shown_on: dt.date, today: dt.date) -> bool:
    return 0 <= (today - first_shown_on).days < OFFER_DAYS


def next_due(installed_on: dt.date, last: LastPrompt | None) -> dt.date:
    return installed_on if last is None else last.first_shown_on + dt.timedelta(days=WEEK_DAYS)


def offer(*, installed_on: dt.date, last: LastPrompt | None, today: dt.date, platform: str) -> Offer | None:
    """Whether a platform asking on ``today`` gets a question, and which prompt (None: nothing now)."""
    if last is not None and not last.closed and is_on_offer(last.first_shown_on, today):
        return Offer("continue", last.sequence) if platform == last.platform else None
    if today < next_due(installed_on, last):
        return None
    return Offer("start", 1 if last is None else last.sequence + 1)


def question_for(seed: str, public_id: str, sequence: int, question_keys: Sequence[str]) -> str:
    """The question of a participant's prompt number ``sequence``, drawn uniformly from ``question_keys``."""
    keys = sorted(question_keys)
    if not keys:
        raise ValueError("no in-feed questions are active")
    return keys[seeded_int(seed, f"infeed|{public_id}|{sequence}", len(keys))]


# --- the paper's question set (supplementary section 2) -------------------------------------------


def _scale(low: int, high: int, low_label: str, high_label: str, middle: dict[int, str] | None = None) -> list[dict]:
    labels = {low: low_label, high: high_label, **(middle or {})}
    return [{"value": n, "label": labels.get(n, str(n))} for n in range(low, high + 1)]


def _labelled(*labels: str) -> list[dict]:
    return [{"value": n, "label": label} for n, label in enumerate(labels, start=1)]


AGREE_5 = _labelled("Strongly Disagree", "Disagree", "Neutral", "Agree", "Strongly Agree")
INTEREST_5 = _labelled(
    "Not at all interested", "A little interested", "Somewhat interested", "Very interested", "Extremely interested"
)
ELECTION_DAY = dt.date(2024, 11, 5)

PAPER_QUESTIONS: list[dict] = [
    {
        "key": "outparty_thermometer",
        "text": "Please indicate how you feel toward [outparty] using the scale below",
        "options": list(
            reversed(
                _scale(
                    0,
                    10,
                    "0 - Very unfavorable (cold toward them)",
                    "10 - Very favorable (warm toward them)",
                    {5: "5 - Neutral"},
                )
            )
        ),
    },
    {
        "key": "campaign_interest",
        "text": "How interested would you say you have been in the political campaigns in the last two weeks?",
        "options": INTEREST_5,
        "asked_until": ELECTION_DAY - dt.timedelta(days=1),
    },
    {
        "key": "politics_interest",
        "text": "How interested would you say you have been in politics in the last two weeks?",
        "options": INTEREST_5,
        "asked_from": ELECTION_DAY,
    },
    {
        "key": "platform_negative_emotion",
        "text": "Please indicate how strongly you agree or disagree with this statement: "
        "Reading [platform] today makes me feel angry, sad, or disgusted.",
        "options": AGREE_5,
    },
    {
        "key": "violence_metaperception",
        "text": "How do you think an average [outparty_member] would respond to the following question: "
        "How much do you feel it is justified for [outparty] to use violence in advancing their political goals "
        "these days?",
        "options": _scale(0, 10, "0 - Not at all", "10 - Extremely"),
    },
    {
        "key": "contested_election_violence",
        "text": "Think about the coming presidential election. If [inparty_candidate] is declared the winner of a "
        "contested election, how likely do you think [outparty_adj] voters would be to engage in violence?",
        "options": _scale(0, 10, "0 - Not at all likely", "10 - Extremely likely"),
        "asked_until": ELECTION_DAY - dt.timedelta(days=1),
    },
    {
        "key": "outparty_perspective_taking",
        "text": "Please indicate how strongly you agree or disagree with this statement: "
        "I find it difficult to see things from [outparty_adj] point of view",
        "options": AGREE_5,
    },
]
