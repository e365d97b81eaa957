"""Helpers that fill the study, source and consent admin forms the way a researcher's browser posts them."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from participants.models import ConsentDocument, RecruitmentSource, Study
from surveys.models import Instrument, Wave
from surveys.services import load_instruments
from tests.factories import ArmFactory, ConsentDocumentFactory, SourceFactory, StudyFactory

ARM_FIELDS = ("name", "slug", "ranker_key", "allocation_weight")
CAPS = ("max_inserted", "max_deleted", "max_inserted_pct", "max_deleted_pct")
DATES = ("starts_facebook", "starts_reddit", "starts_twitter")


def ready_study(status: str = Study.Status.DRAFT) -> Study:
    """A study that passes every launch check: two arms, consent, a source and a baseline survey wave."""
    study = StudyFactory(status=status)
    ArmFactory(study=study, slug="control", name="Control", ranker_key="control", is_control=True, allocation_weight=2)
    ArmFactory(study=study, slug="bridging", name="Bridging", ranker_key="uprank_bridging")
    ConsentDocumentFactory(study=study)
    SourceFactory(study=study, slug="vendor", pid_param="rid")
    Wave.objects.create(
        study=study,
        slug="baseline",
        name="Baseline survey",
        kind=Wave.Kind.BASELINE,
        instrument=library_instrument("prc-baseline"),
        opens_after_days=0,
        open_days=14,
    )
    return study


def library_instrument(slug: str) -> Instrument:
    """An instrument of the library, which ``migrate`` loads (a transactional test's flush empties it: reload)."""
    if not Instrument.objects.filter(slug=slug).exists():
        load_instruments()
    return Instrument.objects.get(slug=slug)


def wave_form(study: Study, **changes: Any) -> dict[str, Any]:
    """The wave admin form as a researcher fills it: a baseline opening at signup for two weeks."""
    values: dict[str, Any] = {
        "study": study.pk,
        "slug": "baseline",
        "name": "Baseline survey",
        "kind": Wave.Kind.BASELINE,
        "instrument": library_instrument("prc-baseline").pk,
        "target": Wave.Target.INSTALLED,
        "active": "on",
        "payment_amount": "0",
        "opens_after_days": "0",
        "open_days": "14",
        "max_reminders": "3",
        "reminder_interval_days": "3",
        "mode": Wave.Mode.INTERNAL,
    }
    return values | changes


def _arm_row(index: int, arm: dict[str, Any]) -> dict[str, Any]:
    prefix = f"arms-{index}-"
    row = {prefix + "id": arm.get("id", ""), prefix + "study": arm.get("study", "")}
    row |= {prefix + name: arm.get(name, "") for name in (*ARM_FIELDS, *DATES, *CAPS)}
    row[prefix + "ranker_config"] = json.dumps(arm.get("ranker_config", {}))
    if arm.get("is_control"):
        row[prefix + "is_control"] = "on"
    return row


def study_form(
    study: Study | None = None, *, arms: list[dict[str, Any]] | None = None, **changes: Any
) -> dict[str, Any]:
    """The study change form as the admin shows it (arms included), with ``changes`` typed over it.

    Every editable study field is posted with the study's value (a new study's defaults), so fields other
    branches add keep working.
    """
    source = study if study is not None else Study(name="A study", slug="a-study")
    skip = {"id", "status", "randomization_seed", "randomization_seed_hash", "created_at"}
    data: dict[str, Any] = {}
    for field in Study._meta.concrete_fields:
        if field.name in skip or not field.editable:
            continue
        value = changes.pop(field.name, getattr(source, field.attname))
        if isinstance(value, bool):
            if value:
                data[field.name] = "on"
        elif isinstance(value, (list, dict)):
            data[field.name] = json.dumps(value)
        else:
            data[field.name] = "" if value is None else value
    existing: list[dict[str, Any]] = []
    if study is not None:
        for arm in study.arms.order_by("id"):
            row = {name: getattr(arm, name) for name in (*ARM_FIELDS, "is_control", "ranker_config")}
            row |= {name: (getattr(arm, name) or "") for name in (*DATES, *CAPS)}
            existing.append({"id": arm.pk, "study": study.pk, **row})
    data |= changes
    rows = arms if arms is not None else existing
    data |= {
        "arms-TOTAL_FORMS": len(rows),
        "arms-INITIAL_FORMS": len(existing) if arms is None else sum(1 for arm in rows if arm.get("id")),
        "arms-MIN_NUM_FORMS": 0,
        "arms-MAX_NUM_FORMS": 1000,
    }
    for index, arm in enumerate(rows):
        data |= _arm_row(index, arm)
    return data


def source_form(source: RecruitmentSource | None = None, **changes: Any) -> dict[str, Any]:
    fields = ("study", "name", "slug", "vendor", "pid_param", "signing_secret", "quota", "cost_per_complete")
    fields += ("payout_method",)
    urls = ("complete_url", "screenout_url", "overquota_url", "quality_url", "duplicate_url")
    values: dict[str, Any] = {"vendor": "other", "pid_param": "pid", "cost_per_complete": "0", "active": True}
    values["payout_method"] = "gift_card"
    if source is not None:
        values |= {name: getattr(source, name) for name in (*fields[1:], *urls, "active")}
        values["study"] = source.study_id
    values |= changes
    data = {name: values.get(name, "") if values.get(name) is not None else "" for name in (*fields, *urls)}
    if values.get("active"):
        data["active"] = "on"
    if "change_reason" in values:
        data["change_reason"] = values["change_reason"]
    return data


def consent_form_admin(study: Study, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "study": study.pk,
        "version": "1.0",
        "title": "Informed consent",
        "text": "You agree to take part.",
        "questions": ["I am 18 or older"],
        "effective_at_0": "2020-01-01",
        "effective_at_1": "00:00:00",
        "on_withdrawal": ConsentDocument.OnWithdrawal.KEEP,
    }
    values |= changes
    if not isinstance(values["questions"], str):
        values["questions"] = json.dumps(values["questions"])
    return values


def errors_of(response: Any) -> str:
    """The page's error messages (the admin shows them next to each field), as one string."""
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def change_status(client: Client, study: Study, to: str, reason: str = "") -> Any:
    return client.post(f"/admin/participants/study/{study.pk}/checklist/", {"to": to, "reason": reason}, follow=True)
