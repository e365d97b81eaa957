"""The extension's enrolment API: register, heartbeat and uninstall, with every bad input."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import Client
from django.utils import timezone

from participants.models import ConsentDocument, ExtensionInstall, Heartbeat, Participant, RecruitmentSource
from participants.tokens import aparticipant_for_token, participant_for_token
from tests.participants.conftest import install_page_secrets, sign_up

pytestmark = pytest.mark.django_db


@pytest.fixture
def code(client: Client, source: RecruitmentSource, consent_doc: ConsentDocument) -> str:
    sign_up(client, source, "ext-1", consent_doc)
    return install_page_secrets(client)[0]


def register(client: Client, code: str, install_key: str = "install-key-1", **extra: Any) -> Any:
    body = {"enrolment_code": code, "install_key": install_key, **extra}
    return client.post("/api/v1/extension/register", body, content_type="application/json")


def heartbeat(client: Client, token: str, **body: Any) -> Any:
    return client.post(
        "/api/v1/extension/heartbeat", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


def test_token_has_256_bits_and_is_stored_only_hashed(client: Client, code: str) -> None:
    token = register(client, code).json()["token"]
    assert len(token) >= 43  # token_urlsafe(32): 32 random bytes
    install = ExtensionInstall.objects.get()
    assert install.token_hash == ExtensionInstall.hash_token(token)
    assert token not in install.token_hash
    assert Participant.objects.get().enrolment_code_hash != code


def test_registration_replay_with_the_same_install_key_rotates_the_token(client: Client, code: str) -> None:
    first = register(client, code)
    second = register(client, code)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["user_id"] == second.json()["user_id"]
    assert ExtensionInstall.objects.count() == 1
    assert participant_for_token(first.json()["token"]) is None
    found = participant_for_token(second.json()["token"])
    assert found is not None
    assert found[1] == ExtensionInstall.objects.get()


def test_code_used_by_another_install_is_refused(client: Client, code: str) -> None:
    register(client, code)
    response = register(client, code, install_key="another-install")
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "code_used",
            "message": "This enrolment code has already been used.",
            "field": "enrolment_code",
        }
    }
    assert ExtensionInstall.objects.count() == 1


def test_expired_code_is_refused(client: Client, code: str) -> None:
    Participant.objects.update(enrolment_code_expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = register(client, code)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "code_expired"
    assert response.json()["error"]["field"] == "enrolment_code"
    assert ExtensionInstall.objects.count() == 0


@pytest.mark.parametrize("bad_code", ["ZZZZ-ZZZZ-ZZZZ", "---", "é"])
def test_unknown_code_is_refused(client: Client, code: str, bad_code: str) -> None:
    response = register(client, bad_code)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "code_unknown"
    assert response.json()["error"]["field"] == "enrolment_code"


def test_missing_fields_are_reported_with_the_field_name(client: Client) -> None:
    response = client.post("/api/v1/extension/register", {"enrolment_code": "X"}, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "install_key"
    assert response.json()["error"]["code"] == "required"


def test_a_new_code_from_the_status_page_allows_a_reinstall(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    sign_up(client, source, "ext-2", consent_doc)
    code, key = install_page_secrets(client)
    token = register(client, code).json()["token"]
    client.post("/api/v1/extension/uninstall", HTTP_AUTHORIZATION=f"Bearer {token}")
    page = client.post(f"/p/{key}/code/")
    new_code = page.content.decode().split('data-testid="enrolment-code">')[1].split("<")[0]
    assert register(client, code, install_key="laptop-2").json()["error"]["code"] == "code_unknown"
    assert register(client, new_code, install_key="laptop-2").status_code == 201
    assert ExtensionInstall.objects.filter(uninstalled_at__isnull=True).count() == 1


def test_heartbeat_without_or_with_a_bad_token_is_401(client: Client, code: str) -> None:
    register(client, code)
    missing = client.post("/api/v1/extension/heartbeat", {}, content_type="application/json")
    bad = heartbeat(client, "not-a-token")
    assert (missing.status_code, bad.status_code) == (401, 401)
    assert bad.json()["error"]["code"] == "invalid_token"
    assert missing.json()["error"]["code"] == "not_authenticated"
    assert Heartbeat.objects.count() == 0


def test_heartbeat_with_a_stable_id_is_stored_once(client: Client, code: str) -> None:
    token = register(client, code).json()["token"]
    for _ in range(3):
        assert heartbeat(client, token, heartbeat_id="hb-1", platform="facebook", active_seconds=30).status_code == 200
    assert Heartbeat.objects.count() == 1
    assert ExtensionInstall.objects.get().last_seen_at is not None


def test_heartbeat_with_bad_input_is_refused(client: Client, code: str) -> None:
    token = register(client, code).json()["token"]
    response = heartbeat(client, token, active_seconds=-5)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "active_seconds"
    assert Heartbeat.objects.count() == 0


def test_uninstall_kills_the_token_and_a_repeat_is_harmless(client: Client, code: str) -> None:
    token = register(client, code).json()["token"]
    first = client.post("/api/v1/extension/uninstall", HTTP_X_EXTENSION_TOKEN=token)
    second = client.post("/api/v1/extension/uninstall", HTTP_X_EXTENSION_TOKEN=token)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert heartbeat(client, token).status_code == 401
    assert participant_for_token(token) is None


def test_uninstalled_participant_is_never_included(client: Client, code: str) -> None:
    token = register(client, code).json()["token"]
    ExtensionInstall.objects.update(installed_at=timezone.now() - dt.timedelta(days=30))
    client.post("/api/v1/extension/uninstall", HTTP_X_EXTENSION_TOKEN=token)
    assert heartbeat(client, token).status_code == 401
    assert Participant.objects.get().included_at is None


def test_participant_for_token_is_a_single_query(client: Client, code: str, django_assert_num_queries: Any) -> None:
    token = register(client, code).json()["token"]
    with django_assert_num_queries(1):
        participant, _install = participant_for_token(token) or (None, None)
        assert participant is not None
        assert participant.assignment.arm.slug
        assert participant.study.inclusion_days == 7


@pytest.mark.django_db(transaction=True)  # the async ORM runs in another thread, on its own connection
async def test_async_participant_for_token_finds_the_participant(client: Client, code: str) -> None:
    token = (await sync_to_async(register)(client, code)).json()["token"]
    found = await aparticipant_for_token(token)
    assert found is not None
    assert found[0].public_id == (await Participant.objects.aget()).public_id
    assert await aparticipant_for_token("nope") is None
    await sync_to_async(connections.close_all)()  # the ORM thread's connection would block test-database teardown


def test_register_and_heartbeat_tell_the_extension_the_configured_heartbeat_interval(
    client: Client, code: str, settings: Any
) -> None:
    settings.PRC_HEARTBEAT_INTERVAL_S = 900

    registered = register(client, code)
    alive = heartbeat(client, registered.json()["token"], platform="reddit")

    assert registered.json()["config"]["heartbeat_interval_s"] == 900
    assert alive.json()["heartbeat_interval_s"] == 900
