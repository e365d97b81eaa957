"""POST /rank's side of the documented contract: tokens the extension API replaced or retired, body encodings
and methods (docs/ranking-path.md, "The contract")."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient, Client

from participants.models import RecruitmentSource
from rankers.models import Slate
from tests.factories import ConsentDocumentFactory, SourceFactory, StudyFactory, paper_arms
from tests.participants.conftest import install_page_secrets, sign_up
from tests.rankers.conftest import post_rank, prc_request, valid_response

pytestmark = pytest.mark.django_db(transaction=True)


def _signed_up_with_code() -> tuple[str, str]:
    """A participant who signed up through the pages; (user_id of a first install, enrolment code)."""
    study = StudyFactory(rank_hold_ms=0)
    paper_arms(study)
    source: RecruitmentSource = SourceFactory(study=study, slug="repdata", pid_param="rid")
    client = Client()
    participant = sign_up(client, source, "rank-token-1", ConsentDocumentFactory(study=study))
    return participant.public_id, install_page_secrets(client)[0]


def _register(code: str, install_key: str) -> Any:
    body = {"enrolment_code": code, "install_key": install_key}
    return Client().post("/api/v1/extension/register", body, content_type="application/json")


def _uninstall(token: str) -> Any:
    return Client().post("/api/v1/extension/uninstall", HTTP_AUTHORIZATION=f"Bearer {token}")


async def _rank_status(async_client: AsyncClient, token: str, user_id: str) -> int:
    response = await post_rank(async_client, token, prc_request(user_id, n_posts=3))
    if response.status_code == 401:
        assert response.json()["error"]["code"] == "unauthenticated"
    return int(response.status_code)


async def test_token_replaced_by_a_repeat_registration_is_refused(async_client: AsyncClient) -> None:
    user_id, code = await sync_to_async(_signed_up_with_code)()
    first = await sync_to_async(_register)(code, "install-key-1")
    assert await _rank_status(async_client, first.json()["token"], user_id) == 200

    second = await sync_to_async(_register)(code, "install-key-1")  # a lost response: the same install again

    assert second.status_code == 200
    assert await _rank_status(async_client, first.json()["token"], user_id) == 401
    assert await _rank_status(async_client, second.json()["token"], user_id) == 200


async def test_token_of_an_uninstalled_extension_is_refused(async_client: AsyncClient) -> None:
    user_id, code = await sync_to_async(_signed_up_with_code)()
    token = (await sync_to_async(_register)(code, "install-key-1")).json()["token"]
    assert await _rank_status(async_client, token, user_id) == 200

    assert (await sync_to_async(_uninstall)(token)).status_code == 200

    assert await _rank_status(async_client, token, user_id) == 401
    assert await Slate.objects.filter(participant_id=user_id).acount() == 1  # only the slate before uninstalling


async def test_deflate_body_is_accepted(async_client: AsyncClient, enrol) -> None:
    participant, token = await enrol("control")
    body = prc_request(participant.public_id, n_posts=5)

    # zlib-wrapped deflate, what HTTP's "deflate" and the browser's CompressionStream("deflate") send
    response = await post_rank(async_client, token, zlib.compress(orjson.dumps(body)), Content_Encoding="deflate")

    assert valid_response(response).ranked_ids == [i["id"] for i in body["items"]]


@pytest.mark.parametrize(
    ("encoding", "payload"),
    [
        ("gzip", b"not gzip at all"),
        ("deflate", b"not deflate either"),
        # a whole, valid request whose last bytes (the gzip trailer, the zlib checksum) were cut off
        ("gzip", gzip.compress(orjson.dumps(prc_request("p_any", n_posts=2)))[:-8]),
        ("deflate", zlib.compress(orjson.dumps(prc_request("p_any", n_posts=2)))[:-4]),
    ],
    ids=["gzip-garbage", "deflate-garbage", "gzip-truncated", "deflate-truncated"],
)
async def test_undecodable_compressed_body_is_a_400(
    async_client: AsyncClient, enrol, encoding: str, payload: bytes
) -> None:
    _participant, token = await enrol("control")

    response = await post_rank(async_client, token, payload, Content_Encoding=encoding)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_encoding"


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress"])
async def test_unsupported_content_encoding_is_a_415(async_client: AsyncClient, enrol, encoding: str) -> None:
    participant, token = await enrol("control")

    response = await post_rank(async_client, token, prc_request(participant.public_id), Content_Encoding=encoding)

    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_encoding"
    assert await Slate.objects.acount() == 0


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
async def test_rank_answers_only_post(async_client: AsyncClient, enrol, method: str) -> None:
    _participant, token = await enrol("control")

    response = await getattr(async_client, method)("/rank", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
