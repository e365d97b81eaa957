"""Checks on every setting a researcher types, run when it is saved (model validators, shown next to the field).

Each validator raises ``ValidationError`` with a message that says what is expected. The rule is that
nothing a form accepts may later raise on a participant page or a dashboard: a value that passes here is
one the screener, the consent page, the vendor redirects and the dashboards can use as it is.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError

from participants.screening import DEVICES, PLATFORM_CHOICES, default_screener_rules

PID_PLACEHOLDER = "{pid}"
SCREENER_FIELDS = ("device", "chrome", "platforms", "desktop_share", "party", "interest")
PARAM_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,50}$")


@functools.cache
def timezone_names() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


def timezone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in timezone_names()]


def validate_timezone(value: str) -> None:
    if value not in timezone_names():
        raise ValidationError(
            f"“{value}” is not a time zone name. Choose one from the list, e.g. America/New_York.", code="timezone"
        )


def _list_of(value: Any, allowed: set[str] | None, what: str, example: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise ValidationError(f"Expected a list of {what}, e.g. {example}.", code="bad_setting")
    unknown = sorted(set(value) - allowed) if allowed is not None else []
    if unknown:
        raise ValidationError(
            f"Unknown {what}: {', '.join(unknown)}. Allowed: {', '.join(sorted(allowed or ()))}.", code="bad_setting"
        )
    return value


def _boolean(rules: dict[str, Any], key: str) -> None:
    if not isinstance(rules[key], bool):
        raise ValidationError(f"“{key}” must be true or false (JSON booleans, no quotes).", code="bad_setting")


def validate_screener_rules(value: Any) -> None:
    """An object whose keys are Table S16's rules; missing keys take the defaults."""
    defaults = default_screener_rules()
    if not isinstance(value, dict):
        raise ValidationError(
            'Expected a JSON object such as {"min_desktop_share": 30}; keys you leave out take the defaults.',
            code="bad_setting",
        )
    unknown = sorted(set(value) - set(defaults))
    if unknown:
        raise ValidationError(
            f"Unknown rule(s): {', '.join(unknown)}. Known rules: {', '.join(defaults)}.", code="bad_setting"
        )
    rules = {**defaults, **value}
    _list_of(rules["allowed_devices"], {key for key, _ in DEVICES}, "devices", '["laptop", "desktop"]')
    _list_of(rules["required_platforms_any"], {key for key, _ in PLATFORM_CHOICES}, "platforms", '["facebook"]')
    share = rules["min_desktop_share"]
    if isinstance(share, bool) or not isinstance(share, int) or not 0 <= share <= 100:
        raise ValidationError(
            f"“min_desktop_share” must be a whole number from 0 to 100 (a percentage), not {share!r}.",
            code="bad_setting",
        )
    _boolean(rules, "require_chrome")
    _boolean(rules, "require_interest")


def validate_strata_fields(value: Any) -> None:
    _list_of(value, set(SCREENER_FIELDS), "screener questions", '["party"]')
    if len(set(value)) != len(value):
        raise ValidationError("Name each screener question once.", code="bad_setting")


def validate_consent_questions(value: Any) -> None:
    """A list of statements, one checkbox each; a plain string would become one checkbox per letter."""
    if isinstance(value, str):
        raise ValidationError(
            'Expected a JSON list of statements, one checkbox each, e.g. ["I am 18 or older", "I agree"],'
            " not a single string.",
            code="bad_setting",
        )
    _list_of(value, None, "statements", '["I am 18 or older", "I agree to take part"]')


def validate_redirect_template(value: str) -> None:
    if value and PID_PLACEHOLDER not in value:
        raise ValidationError(
            f"The link must contain {PID_PLACEHOLDER} where the vendor's participant id goes,"
            " e.g. https://vendor.example/complete?id={pid}.",
            code="no_pid",
        )


def validate_param_name(value: str) -> None:
    if not PARAM_NAME.match(value):
        raise ValidationError(
            "A URL parameter name: letters, digits, '_', '-' or '.', e.g. PROLIFIC_PID or rid.", code="bad_setting"
        )


def validate_json_object(value: Any) -> None:
    if not isinstance(value, dict):
        raise ValidationError('Expected a JSON object, e.g. {} or {"url": "https://…"}.', code="bad_setting")


# Other apps add checks of values they interpret (the rankers app: ranker keys and their settings).
ArmSettingsCheck = Callable[[str, dict[str, Any]], list[str]]
_arm_settings_checks: list[ArmSettingsCheck] = []
_ranker_catalogs: list[Callable[[], list[str]]] = []


def register_ranker_catalog(catalog: Callable[[], list[str]], check: ArmSettingsCheck) -> None:
    """Called by the app that owns rankers: the keys researchers may choose, and a check of an arm's settings."""
    if catalog not in _ranker_catalogs:
        _ranker_catalogs.append(catalog)
        _arm_settings_checks.append(check)


def ranker_keys() -> list[str]:
    return sorted({key for catalog in _ranker_catalogs for key in catalog()})


def arm_settings_problems(ranker_key: str, config: dict[str, Any]) -> list[str]:
    """What is wrong with an arm's ranker key and ranker settings (empty when usable)."""
    return [problem for check in _arm_settings_checks for problem in check(ranker_key, config)]
