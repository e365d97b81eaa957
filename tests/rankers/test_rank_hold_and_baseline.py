"""The lag ramp and the baseline clock: pure rules with injected clocks, then through POST /rank."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError
from django.test import AsyncClient, Client
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from participants.models import ExtensionInstall, Participant, Study
from rankers.checks import Caps
from rankers.models import Slate
from rankers.serving import ArmInfo, Enrolment, effective_arm, hold_ms, hold_seconds
from tests.factories import ArmFactory, ConsentDocumentFactory, SourceFactory, StudyFactory
from tests.participants.conftest import install_page_secrets, sign_up
from tests.rankers.conftest import post_rank, prc_request, valid_response

INSTALLED = dt.datetime(2024, 9, 1, 12, tzinfo=dt.UTC)
STARTED = {"facebook": dt.date(2024, 1, 1), "reddit": dt.date(2024, 1, 1), "twitter": dt.date(2024, 1, 1)}
TREATMENT = ArmInfo(slug="bridging", ranker_key="uprank_bridging", is_control=False, caps=Caps(0, 0), starts=STARTED)
CONTROL = ArmInfo(slug="control", ranker_key="control", is_control=True, caps=Caps(0, 0), starts=STARTED)


def enrolment(*, hold: int = 500, ramp_days: int = 14, baseline_days: int = 14, arm: ArmInfo = TREATMENT) -> Enrolment:
    return Enrolment(
        public_id="p_1",
        study_id=1,
        withdrawn=False,
        consent_ok=True,
        installed_at=INSTALLED,
        baseline_days=baseline_days,
        hold_ms=hold,
        ramp_days=ramp_days,
        arm=arm,
        control=CONTROL,
    )


def days_after_install(days: float) -> dt.datetime:
    return INSTALLED + dt.timedelta(days=days)


# --- the pure rules, with injected clocks --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "expected_ms"),
    [(0, 0.0), (1, 500 / 14), (7, 250.0), (13.99, 500 * 13.99 / 14), (14, 500.0), (20, 500.0)],
)
def test_hold_rises_linearly_from_zero_at_installation_to_the_full_hold_and_stays(
    days: float, expected_ms: float
) -> None:
    assert hold_seconds(enrolment(), days_after_install(days)) == pytest.approx(expected_ms / 1000)


@given(
    st.floats(min_value=-2, max_value=400, allow_nan=False),
    st.floats(min_value=0, max_value=400, allow_nan=False),
    st.integers(min_value=0, max_value=5000),
    st.integers(min_value=0, max_value=60),
)
def test_hold_never_falls_and_never_passes_the_full_hold(
    earlier: float, later_by: float, full: int, ramp_days: int
) -> None:
    rule = enrolment(hold=full, ramp_days=ramp_days, baseline_days=max(ramp_days, 14))
    first = hold_ms(rule, days_after_install(earlier))
    second = hold_ms(rule, days_after_install(earlier + later_by))
    assert 0 <= first <= second <= full


@given(st.floats(min_value=0, max_value=14, allow_nan=False), st.floats(min_value=14, max_value=400))
def test_baseline_is_never_held_longer_than_treatment(baseline_day: float, treatment_day: float) -> None:
    rule = enrolment()
    assert effective_arm(rule, "reddit", days_after_install(treatment_day)).arm == TREATMENT
    assert hold_ms(rule, days_after_install(baseline_day)) <= hold_ms(rule, days_after_install(treatment_day))


def test_without_a_ramp_the_full_hold_applies_from_installation() -> None:
    assert hold_ms(enrolment(ramp_days=0), INSTALLED) == 500


@pytest.mark.parametrize(
    ("days", "arm", "phase"),
    [(0, CONTROL, "baseline"), (13.99, CONTROL, "baseline"), (14, TREATMENT, "assigned"), (20, TREATMENT, "assigned")],
)
def test_the_baseline_counts_from_installation(days: float, arm: ArmInfo, phase: str) -> None:
    effective = effective_arm(enrolment(), "reddit", days_after_install(days))
    assert (effective.arm, effective.reason) == (arm, phase)


def test_an_arm_not_started_on_the_platform_is_control_after_baseline() -> None:
    late_start = ArmInfo(
        slug="news", ranker_key="add_news", is_control=False, caps=Caps(0, 0), starts={"reddit": dt.date(2030, 1, 1)}
    )
    rule = enrolment(arm=late_start)
    assert effective_arm(rule, "reddit", days_after_install(20)).reason == "not_started"
    assert effective_arm(rule, "twitter", days_after_install(20)).reason == "not_started"  # no start date at all


@pytest.mark.django_db
def test_a_ramp_longer_than_the_baseline_is_refused() -> None:
    study = StudyFactory.build(baseline_days=14, ramp_days=21)
    with pytest.raises(ValidationError) as refused:
        study.clean()
    assert "ramp_days" in refused.value.message_dict


# --- through POST /rank ----------------------------------------------------------------------------------------

FULL_HOLD_MS = 300


async def _installed_days_ago(participant: Participant, days: float) -> None:
    installed = timezone.now() - dt.timedelta(days=days)
    await Participant.objects.filter(pk=participant.pk).aupdate(
        enrolled_at=installed, consented_at=installed, created_at=installed
    )
    await ExtensionInstall.objects.filter(participant=participant).aupdate(installed_at=installed)


async def _only_slate(public_id: str) -> Slate:
    return await Slate.objects.aget(participant_id=public_id)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("days", "expected_hold_ms", "phase", "effective"), [
    (0, 0.0, "baseline", "control"),
    (7, FULL_HOLD_MS / 2, "baseline", "control"),
    (20, FULL_HOLD_MS, "assigned", "reverse"),
])  # fmt: skip
async def test_rank_is_held_as_the_ramp_says_after_installation(
    async_client: AsyncClient,
    enrol: Any,
    study: Study,
    days: float,
    expected_hold_ms: float,
    phase: str,
    effective: str,
) -> None:
    await Study.objects.filter(pk=study.pk).aupdate(rank_hold_ms=FULL_HOLD_MS, ramp_days=14)
    participant, token = await enrol("reverse", past_baseline=False)
    await _installed_days_ago(participant, days)

    started = time.monotonic()
    valid_response(await post_rank(async_client, token, prc_request(participant.public_id, n_posts=4)))
    elapsed_ms = (time.monotonic() - started) * 1000

    slate = await _only_slate(participant.public_id)
    assert slate.hold_ms == pytest.approx(expected_hold_ms, abs=0.05)  # the ramp's value when the request came
    assert elapsed_ms >= expected_hold_ms - 0.05
    assert slate.served_ms >= expected_hold_ms - 0.05
    assert (slate.phase, slate.effective_arm) == (phase, effective)


@pytest.mark.django_db(transaction=True)
async def test_someone_who_installs_three_days_after_consenting_gets_the_whole_baseline(
    async_client: AsyncClient, enrol: Any, study: Study
) -> None:
    await Study.objects.filter(pk=study.pk).aupdate(rank_hold_ms=FULL_HOLD_MS, ramp_days=14)
    participant, token = await enrol("reverse", past_baseline=False)
    now = timezone.now()
    # Consented 16 days ago, installed 13 days ago: 14 days after consent, but not after installation.
    await Participant.objects.filter(pk=participant.pk).aupdate(
        created_at=now - dt.timedelta(days=16), consented_at=now - dt.timedelta(days=16),
        enrolled_at=now - dt.timedelta(days=13),
    )  # fmt: skip
    await ExtensionInstall.objects.filter(participant=participant).aupdate(installed_at=now - dt.timedelta(days=13))

    body = prc_request(participant.public_id, n_posts=4)
    response = valid_response(await post_rank(async_client, token, body))

    assert response.ranked_ids == [i["id"] for i in body["items"]]
    slate = await _only_slate(participant.public_id)
    assert (slate.phase, slate.effective_arm, slate.intervention_on) == ("baseline", "control", False)
    assert slate.hold_ms == pytest.approx(FULL_HOLD_MS * 13 / 14, abs=0.05)


def _reinstall_after(days: float) -> tuple[Participant, str]:
    """Sign up and install through HTTP, pretend that was ``days`` ago, then uninstall and reinstall with a new code."""
    study = StudyFactory(rank_hold_ms=FULL_HOLD_MS, ramp_days=14)
    ArmFactory(study=study, slug="control", ranker_key="control", is_control=True)
    ArmFactory(study=study, slug="reverse", ranker_key="reverse")
    source = SourceFactory(study=study)
    client = Client()
    participant = sign_up(client, source, "reinstaller", ConsentDocumentFactory(study=study))
    code, status_key = install_page_secrets(client)
    first = client.post("/api/v1/extension/register", {"enrolment_code": code, "install_key": "laptop-1"},
                        content_type="application/json").json()["token"]  # fmt: skip
    long_ago = timezone.now() - dt.timedelta(days=days)
    Participant.objects.filter(pk=participant.pk).update(enrolled_at=long_ago, consented_at=long_ago)
    ExtensionInstall.objects.filter(participant=participant).update(installed_at=long_ago)

    client.post("/api/v1/extension/uninstall", HTTP_AUTHORIZATION=f"Bearer {first}")
    page = client.post(f"/p/{status_key}/code/").content.decode()
    new_code = page.split('data-testid="enrolment-code">')[1].split("<")[0]
    answer = client.post("/api/v1/extension/register", {"enrolment_code": new_code, "install_key": "laptop-2"},
                         content_type="application/json")  # fmt: skip
    assert answer.status_code == 201, answer.content
    participant.refresh_from_db()
    return participant, answer.json()["token"]


@pytest.mark.django_db(transaction=True)
async def test_a_reinstall_does_not_restart_the_baseline_or_the_ramp(async_client: AsyncClient) -> None:
    participant, token = await sync_to_async(_reinstall_after)(20)
    assert participant.enrolled_at is not None
    assert timezone.now() - participant.enrolled_at > dt.timedelta(days=19)

    valid_response(await post_rank(async_client, token, prc_request(participant.public_id, n_posts=4)))

    slate = await _only_slate(participant.public_id)
    assert slate.phase != "baseline"
    assert slate.hold_ms == FULL_HOLD_MS
