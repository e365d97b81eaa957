"""The recruitment screener's eligibility rules (Table S16 by default), as a pure function.

Researchers change the rules per study through ``Study.screener_rules``; a key they leave out takes
the default, so adding a rule later never makes an old study's rules invalid.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from participants.paper import PLATFORM_LABELS, PLATFORMS

DEVICES = [("laptop", "Laptop"), ("desktop", "Desktop computer"), ("phone", "Phone"), ("tablet", "Tablet")]
PLATFORM_CHOICES = [
    ("facebook", PLATFORM_LABELS["facebook"]),
    ("twitter", PLATFORM_LABELS["twitter"]),
    ("reddit", PLATFORM_LABELS["reddit"]),
    ("instagram", "Instagram"),
    ("tiktok", "TikTok"),
    ("youtube", "YouTube"),
]
PARTIES = [
    ("democrat", "Democrat"),
    ("republican", "Republican"),
    ("independent", "Independent"),
    ("other", "Something else"),
    ("none", "Prefer not to say"),
]


def default_screener_rules() -> dict[str, Any]:
    """Table S16 of the paper: who passes the recruitment screener."""
    return {
        "allowed_devices": ["laptop", "desktop"],
        "require_chrome": True,
        "required_platforms_any": list(PLATFORMS),
        "min_desktop_share": 30,
        "require_interest": True,
    }


def effective_rules(rules: Mapping[str, Any] | None) -> dict[str, Any]:
    return {**default_screener_rules(), **(rules or {})}


def screening_failures(answers: Mapping[str, Any], rules: Mapping[str, Any] | None = None) -> list[str]:
    """The names of the rules these answers fail; an empty list means eligible."""
    rules = effective_rules(rules)
    failures = []
    if answers.get("device") not in rules["allowed_devices"]:
        failures.append("device")
    if rules["require_chrome"] and answers.get("chrome") != "yes":
        failures.append("chrome")
    required = set(rules["required_platforms_any"])
    if required and not required & set(answers.get("platforms") or []):
        failures.append("platforms")
    if int(answers.get("desktop_share") or 0) < int(rules["min_desktop_share"]):
        failures.append("desktop_share")
    if rules["require_interest"] and answers.get("interest") != "yes":
        failures.append("interest")
    return failures
