"""The baseline's nine issue questions (supplementary section 3.3) and the positions Challenging Stereotypes reads
from them (``surveys.ranker_input.issue_positions_from_answers``)."""

from __future__ import annotations

from typing import Any

import pytest

from rankers.content import annotation, personalization
from surveys.library import INSTRUMENTS, ISSUES
from surveys.ranker_input import issue_positions_from_answers


def test_ideology_is_turned_to_the_papers_scale_and_issues_keep_the_prompts_numbers() -> None:
    answers = {"ideology": 2, "issue_trump": 1, "issue_climate": 5, "issue_economy": 3, "party_id": "democrat"}

    assert issue_positions_from_answers(answers) == {"ideology": 6, "trump": 1, "climate": 5, "economy": 3}
    assert issue_positions_from_answers({"ideology": 1})["ideology"] == 7  # extremely liberal
    assert issue_positions_from_answers({"ideology": 7})["ideology"] == 1  # extremely conservative


@pytest.mark.parametrize(
    "answers",
    [
        {},
        {"ideology": None, "issue_trump": None},
        {"ideology": 0, "issue_trump": 6},
        {"ideology": 8, "issue_media": 0},
        {"ideology": "4", "issue_media": 2.5},
        {"ideology": True, "issue_israel": False},
        {"trump": 3, "opinion_trump": 3},  # only the survey's own keys count
    ],
)
def test_unanswered_or_off_scale_answers_give_no_position(answers: dict[str, Any]) -> None:
    assert issue_positions_from_answers(answers) == {}


def test_the_survey_asks_the_nine_issues_the_annotation_prompt_rates_posts_on() -> None:
    assert tuple(ISSUES) == annotation.ISSUES == personalization.ISSUES
    [baseline] = [spec for spec in INSTRUMENTS if spec["slug"] == "prc-baseline"]
    questions = [q for q in baseline["questions"] if q["key"].startswith("issue_")]
    assert [q["key"] for q in questions] == [f"issue_{issue}" for issue in ISSUES]
    # Each answer carries the number the prompt gives a post with that position (5: its first wording).
    assert all([o["value"] for o in q["options"]] == [5, 4, 3, 2, 1] for q in questions)
    assert {q["page"] for q in questions} == {max(q["page"] for q in baseline["questions"])}  # the last page
