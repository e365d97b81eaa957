"""Baseline answers as the PRC ``SurveyResponse`` (``ranking-challenge`` 3.4.0) that rankers receive.

``ranker_survey_from_answers`` is the one function that maps our answers onto that model. The surveys
app copies its result onto ``Participant.ranker_survey`` when the baseline is completed, and the
ranking path reads it from there: rankers never import this app.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic
from ranking_challenge.survey import SurveyResponse

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
