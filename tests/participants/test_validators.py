"""The setting validators: whatever they accept, the screener and the vendor redirects can use without raising."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from participants.screening import DEVICES, PLATFORM_CHOICES, screening_failures
from participants.validators import (
    validate_consent_questions,
    validate_redirect_template,
    validate_screener_rules,
    validate_timezone,
)
from participants.vendors import outbound_url

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=8) | st.floats(allow_nan=False),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)
rule_names = st.sampled_from(
    ["allowed_devices", "require_chrome", "required_platforms_any", "min_desktop_share", "require_interest"]
)
answers = st.fixed_dictionaries(
    {
        "device": st.sampled_from([key for key, _ in DEVICES]),
        "chrome": st.sampled_from(["yes", "no"]),
        "platforms": st.lists(st.sampled_from([key for key, _ in PLATFORM_CHOICES]), max_size=3),
        "desktop_share": st.integers(0, 100),
        "interest": st.sampled_from(["yes", "no"]),
    }
)


@settings(deadline=None)  # the shared test machine is slow at times; this is about correctness
@given(rules=st.dictionaries(rule_names, json_values | st.lists(st.sampled_from(["laptop", "facebook"]))), seen=answers)
def test_screener_rules_the_validator_accepts_never_make_the_screener_raise(
    rules: dict[str, Any], seen: dict[str, Any]
) -> None:
    try:
        validate_screener_rules(rules)
    except ValidationError:
        return
    assert isinstance(screening_failures(seen, rules), list)


@given(template=st.text(max_size=40), pid=st.text(max_size=20))
def test_an_accepted_redirect_template_always_carries_the_vendor_id(template: str, pid: str) -> None:
    try:
        validate_redirect_template(template)
    except ValidationError:
        assert "{pid}" not in template
        return
    assert not template or "{pid}" in template


@pytest.mark.parametrize("value", ["New York", "EST5EDT ", "", "america/new_york"])
def test_time_zones_must_be_zone_names(value: str) -> None:
    with pytest.raises(ValidationError, match="is not a time zone name"):
        validate_timezone(value)


def test_a_consent_question_string_is_refused_and_a_list_of_statements_accepted() -> None:
    with pytest.raises(ValidationError, match="not a single string"):
        validate_consent_questions("I agree")
    with pytest.raises(ValidationError, match="Expected a list of statements"):
        validate_consent_questions(["I agree", ""])
    validate_consent_questions(["I am 18 or older", "I agree"])
    assert outbound_url("https://v.example/c?id={pid}", "a b") == "https://v.example/c?id=a%20b"
