"""Ranker services, the management commands, /metrics and the OpenAPI schema."""

from __future__ import annotations

from io import StringIO

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.core.management import CommandError, call_command
from django.test import AsyncClient, Client

from participants.models import Assignment, AuditEvent, Participant, StratumCounter
from participants.roles import PI, READER
from participants.study_status import anyone_randomized
from rankers.models import RankerServiceKey, Slate
from tests.factories import ArmFactory, StudyFactory, login
from tests.rankers.conftest import post_rank, prc_request, valid_response

pytestmark = pytest.mark.django_db(transaction=True)


def _command(*args: str) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip().splitlines()


async def _service_key() -> str:
    lines = await sync_to_async(_command)("create_ranker_key", "--label", "tests")
    return lines[-1]


async def test_create_ranker_key_prints_the_key_last_and_stores_only_its_hash() -> None:
    key = await _service_key()

    stored = await RankerServiceKey.objects.aget(label="tests")
    assert stored.key_hash == RankerServiceKey.hash_key(key)
    assert key not in {stored.key_hash, stored.prefix}


async def test_ranker_service_ranks_statelessly_with_a_service_key(async_client: AsyncClient) -> None:
    key = await _service_key()
    body = prc_request("anyone", n_posts=6)

    response = await async_client.post(
        "/rankers/reverse/rank",
        data=orjson.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )

    assert valid_response(response).ranked_ids == [i["id"] for i in reversed(body["items"])]
    assert await Slate.objects.acount() == 0


async def test_ranker_service_refuses_a_missing_or_revoked_key_and_unknown_rankers(async_client: AsyncClient) -> None:
    key = await _service_key()
    body = orjson.dumps(prc_request("anyone"))

    missing = await async_client.post("/rankers/reverse/rank", data=body, content_type="application/json")
    unknown = await async_client.post(
        "/rankers/nope/rank", data=body, content_type="application/json", headers={"Authorization": f"Bearer {key}"}
    )
    await RankerServiceKey.objects.aupdate(revoked_at="2024-01-01T00:00:00Z")
    revoked = await async_client.post(
        "/rankers/reverse/rank", data=body, content_type="application/json", headers={"Authorization": f"Bearer {key}"}
    )

    assert (missing.status_code, unknown.status_code, revoked.status_code) == (401, 404, 401)


async def test_enroll_test_participant_prints_a_working_token_of_a_test_participant_outside_the_sequence(
    async_client: AsyncClient,
) -> None:
    study = await sync_to_async(StudyFactory)(rank_hold_ms=0)
    await sync_to_async(ArmFactory)(study=study, slug="control", ranker_key="control", is_control=True)
    await sync_to_async(ArmFactory)(study=study, slug="flip", ranker_key="reverse")

    lines = await sync_to_async(_command)(
        "enroll_test_participant", "--arm", "flip", "--past-baseline", "--study", study.slug
    )

    assert len(lines) == 2
    assert lines[0].startswith("user_id: ")
    assert lines[1].startswith("token: ")
    user_id, token = lines[0].removeprefix("user_id: "), lines[1].removeprefix("token: ")
    participant = await Participant.objects.aget(public_id=user_id)
    assert participant.included_at is not None
    assert participant.is_test  # left out of the funnel, costs, CONSORT, rollups and exports
    assignment = await Assignment.objects.aget(participant=participant)
    assert assignment.stratum == "test:enroll_test_participant"
    assert not await StratumCounter.objects.filter(study=study).aexists()  # no position of the real sequence
    assert not await sync_to_async(anyone_randomized)(study)  # the design does not lock for it
    body = prc_request(user_id, n_posts=4)
    response = valid_response(await post_rank(async_client, token, body))
    assert response.ranked_ids == [i["id"] for i in reversed(body["items"])]


async def test_metrics_are_served_in_prometheus_format(async_client: AsyncClient, enrol, settings) -> None:
    settings.METRICS_TOKEN = "scrape-secret"
    participant, token = await enrol("control")
    valid_response(await post_rank(async_client, token, prc_request(participant.public_id)))

    response = await async_client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})

    text = response.content.decode()
    assert response.status_code == 200
    assert 'prc_rank_requests_total{endpoint="rank",status="200"}' in text
    assert "prc_rank_served_seconds_bucket" in text
    assert "prc_rank_ranker_seconds_bucket" in text
    assert "prc_rank_items_per_request_bucket" in text


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Bearer ", "scrape-secret"])
def test_metrics_refuse_anyone_without_the_token_or_a_researcher_login(client: Client, settings, header) -> None:
    settings.METRICS_TOKEN = "scrape-secret"

    response = client.get("/metrics", headers={"Authorization": header} if header else {})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_metrics_without_a_configured_token_accept_no_token(client: Client, settings) -> None:
    settings.METRICS_TOKEN = ""

    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 401


def test_researchers_signed_in_can_read_the_metrics(settings) -> None:
    settings.METRICS_TOKEN = ""
    client = login("reader", READER)

    response = client.get("/metrics")

    assert response.status_code == 200
    assert b"prc_rank_requests_total" in response.content


def test_openapi_schema_lists_the_ranking_endpoints(client: Client) -> None:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")

    schema = response.json()
    assert "/rank" in schema["paths"]
    assert "/rankers/{name}/rank" in schema["paths"]
    assert "RankingRequest" in schema["components"]["schemas"]
    assert schema["components"]["schemas"]["RankingRequest"]["properties"]["slate_pass"]["minimum"] == 1


def _service_status(client: Client, key: str) -> int:
    response = client.post(
        "/rankers/control/rank",
        data=orjson.dumps(prc_request("anyone", n_posts=2)),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    return int(response.status_code)


def test_a_pi_issues_a_key_in_the_admin_sees_it_once_and_revokes_it() -> None:
    pi = login("pi", PI)

    added = pi.post("/admin/rankers/rankerservicekey/add/", {"label": "bridging team"}, follow=True)

    [message] = [str(m) for m in added.context["messages"] if "shown again" in str(m)]
    key = message.rsplit(" ", 1)[-1]
    row = RankerServiceKey.objects.get(label="bridging team")
    assert row.key_hash == RankerServiceKey.hash_key(key)
    assert key.startswith(row.prefix)
    assert _service_status(Client(), key) == 200

    revoked = pi.post(
        "/admin/rankers/rankerservicekey/",
        {"action": "revoke", "_selected_action": [row.pk]},
        follow=True,
    )

    assert revoked.status_code == 200
    assert _service_status(Client(), key) == 401
    actions = list(
        AuditEvent.objects.filter(object_type="RankerServiceKey").order_by("id").values_list("action", "actor_label")
    )
    assert actions == [("ranker_key.issued", "pi"), ("ranker_key.revoked", "pi")]
    assert pi.post(f"/admin/rankers/rankerservicekey/{row.pk}/delete/").status_code == 403


def test_read_only_researchers_see_keys_but_cannot_issue_or_revoke_them() -> None:
    row, key = RankerServiceKey.issue(label="someone")
    reader = login("reader", READER)

    assert reader.get("/admin/rankers/rankerservicekey/").status_code == 200
    assert reader.post("/admin/rankers/rankerservicekey/add/", {"label": "x"}).status_code == 403
    reader.post("/admin/rankers/rankerservicekey/", {"action": "revoke", "_selected_action": [row.pk]})

    assert _service_status(Client(), key) == 200


def test_revoke_ranker_key_command_revokes_once_through_the_audited_service() -> None:
    row, key = RankerServiceKey.issue(label="external team")

    first = _command("revoke_ranker_key", row.prefix)
    again = _command("revoke_ranker_key", row.prefix)

    assert "Revoked" in first[-1]
    assert "already revoked" in again[-1]
    assert _service_status(Client(), key) == 401
    actions = AuditEvent.objects.filter(object_id=str(row.pk), object_type="RankerServiceKey").order_by("id")
    assert list(actions.values_list("action", "actor_label")) == [
        ("ranker_key.issued", "system"),
        ("ranker_key.revoked", "system"),
    ]
    with pytest.raises(CommandError, match="no key"):
        _command("revoke_ranker_key", "rk_nothing")
