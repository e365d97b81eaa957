"""Baseline answers as the PRC ``SurveyResponse`` (``ranking-challenge`` 3.4.0) that rankers receive.

``ranker_survey_from_answers`` is the one function that maps our answers onto that model. The surveys
app copies its result onto ``Participant.ranker_survey`` when the baseline is completed, and the
ranking path reads it from there: rankers never import this app.

``issue_positions_from_answers`` is the one function that turns the baseline answers into the positions
Challenging Stereotypes personalizes on (supplementary section 3.3), copied onto
``Participant.baseline_issue_positions`` at the same moment and read by the queue refresh.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

import pydantic
from ranking_challenge.survey import SurveyResponse

from surveys.library import ISSUE_KEY_PREFIX, ISSUES

# SurveyResponse field <- our question key (the library uses SurveyResponse's values for these).
DIRECT = {
    "party_id": "party_id",
    "party_write_in": "party_id_write_in",
    "support": "party_strong",
    "party_lean": "party_leaner",
    "sex": "gender",
    "age": "age",
    "education": "education",
    "ideology": "ideology",
    "income": "income",
    "ethnicity": "ethnicity",
    "ethnicity_write_in": "ethnicity_write_in",
    "socmed_use": "socmed_use",
}
BROWSER_SHARE = {"browser_perc_facebook": "facebook", "browser_perc_twitter": "x", "browser_perc_reddit": "reddit"}


def ranker_survey_from_answers(answers: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-ready ``SurveyResponse`` of the baseline answers; empty without a party answer (it is required)."""
    fields: dict[str, Any] = {name: answers.get(key) for name, key in DIRECT.items()}
    shares = answers.get("browser_mobile") or {}
    for name, platform in BROWSER_SHARE.items():
        value = shares.get(platform)
        fields[name] = value / 100 if isinstance(value, int | float) and not isinstance(value, bool) else None
    try:
        survey = SurveyResponse.model_validate({k: v for k, v in fields.items() if v not in (None, "")})
    except pydantic.ValidationError:
        return {}
    dumped: dict[str, Any] = survey.model_dump(mode="json", exclude_none=True)
    return dumped


IDEOLOGY_POINTS = 7  # the ideology question: 1 = extremely liberal ... 7 = extremely conservative
ISSUE_POINTS = 5  # each issue question: 1..5, numbered as the section 3.3 prompt numbers a post's position


def issue_positions_from_answers(answers: Mapping[str, Any]) -> dict[str, int]:
    """The participant's positions as Challenging Stereotypes compares them with posts (section 3.3).

    ``ideology`` on the paper's prompt scale (7 = extremely liberal ... 1 = extremely conservative: our question
    numbers it the other way, so it is turned round here), and each of the nine issues by name (``trump`` ...
    ``economy``) on the prompt's 1-5 scale, which the issue questions already use. A question left unanswered,
    or an answer outside its scale, is left out; no answers give ``{}`` (the participant then gets the
    non-personalized queue).
    """
    positions: dict[str, int] = {}
    ideology = answers.get("ideology")
    if _on_scale(ideology, IDEOLOGY_POINTS):
        positions["ideology"] = IDEOLOGY_POINTS + 1 - ideology
    for issue in ISSUES:
        value = answers.get(f"{ISSUE_KEY_PREFIX}{issue}")
        if _on_scale(value, ISSUE_POINTS):
            positions[issue] = value
    return positions


def _on_scale(value: object, points: int) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= points
