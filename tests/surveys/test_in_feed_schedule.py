"""The in-feed schedule rule (surveys.infeed), as pure functions: weeks, first platform, three days."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from surveys.in_feed_schedule import OFFER_DAYS, LastPrompt, offer, question_for

DAY0 = dt.date(2024, 10, 1)
PLATFORMS = ("facebook", "reddit", "twitter")


def simulate(visits: dict[int, list[str]], days: int, answer_on_day: int | None = None) -> list[tuple[int, str, int]]:
    """Walk ``days`` days; ``visits`` maps a day to the platforms used, in order. Returns (day, platform, sequence)
    for every offer; the participant answers on the ``answer_on_day``-th day of each prompt (None: never)."""
    last: LastPrompt | None = None
    shown = []
    for n in range(days):
        today = DAY0 + dt.timedelta(days=n)
        for platform in visits.get(n, []):
            decision = offer(installed_on=DAY0, last=last, today=today, platform=platform)
            if decision is None:
                continue
            if decision.action == "start":
                last = LastPrompt(decision.sequence, today, platform, closed=False)
            assert last is not None
            shown.append((n, platform, decision.sequence))
            if answer_on_day is not None and (today - last.first_shown_on).days + 1 == answer_on_day:
                last = LastPrompt(last.sequence, last.first_shown_on, last.platform, closed=True)
    return shown


def test_over_several_weeks_one_prompt_a_week_on_the_first_platform_for_three_days() -> None:
    every_day = {n: ["reddit", "facebook"] for n in range(28)}

    shown = simulate(every_day, 28)

    assert {(day, platform) for day, platform, _ in shown} == {
        (week * 7 + d, "reddit") for week in range(4) for d in range(OFFER_DAYS)
    }
    assert [seq for _, _, seq in shown] == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]


def test_an_answered_prompt_is_not_offered_again_and_the_next_comes_a_week_after_it_first_appeared() -> None:
    every_day = {n: ["facebook"] for n in range(15)}

    shown = simulate(every_day, 15, answer_on_day=1)

    assert [day for day, _, _ in shown] == [0, 7, 14]


def test_a_participant_away_on_the_due_day_gets_the_question_on_the_next_day_they_use_a_platform() -> None:
    visits = {0: ["twitter"], 9: ["facebook"], 10: ["twitter"], 11: ["facebook"], 12: ["facebook"]}

    shown = simulate(visits, 20)

    assert shown == [(0, "twitter", 1), (9, "facebook", 2), (11, "facebook", 2)]


@settings(deadline=None)  # a pure function; a loaded CI machine must not fail it on time
@given(
    visits=st.dictionaries(st.integers(0, 60), st.lists(st.sampled_from(PLATFORMS), max_size=3)),
    answer=st.none() | st.integers(1, 3),
)
def test_prompts_start_at_least_a_week_apart_and_are_offered_on_at_most_three_consecutive_days(
    visits: dict[int, list[str]], answer: int | None
) -> None:
    shown = simulate(visits, 61, answer_on_day=answer)

    starts: dict[int, int] = {}
    for day, _, seq in shown:
        starts.setdefault(seq, day)
        assert day - starts[seq] < OFFER_DAYS
    first_days = list(starts.values())
    assert all(b - a >= 7 for a, b in itertools.pairwise(first_days))
    assert all(len({p for _, p, s in shown if s == seq}) == 1 for seq in starts)  # one platform per prompt


def test_the_drawn_question_is_reproducible_and_roughly_uniform() -> None:
    keys = ["anger", "interest", "thermometer", "violence"]

    draws = [question_for("seed", f"p_{i:04d}", 1, keys) for i in range(2000)]

    assert draws == [question_for("seed", f"p_{i:04d}", 1, list(reversed(keys))) for i in range(2000)]
    assert all(400 < n < 600 for n in Counter(draws).values())
