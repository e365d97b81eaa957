"""The ASGI entry point uvicorn serves: the ranking paths skip Django's middleware, the rest reach Django."""

from __future__ import annotations

import orjson
import pytest
from asgiref.sync import sync_to_async
from ranking_challenge.response import RankingResponse

from rankers.models import Slate
from tests.asgi import acall
from tests.rankers.conftest import prc_request

pytestmark = pytest.mark.django_db(transaction=True)


async def call_asgi(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
                    chunk: int = 0) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    """Drive the ASGI app as a server would; ``chunk`` splits the body into several messages."""
    response = await acall(method, path, body, headers, chunk=chunk)
    return response.status_code, response.headers, response.content


async def test_rank_through_the_asgi_entry_point_ranks_and_logs_the_slate(enrol) -> None:
    participant, token = await enrol("reverse")
    request = prc_request(participant.public_id, n_posts=5)

    status, headers, body = await call_asgi(
        "POST", "/rank", orjson.dumps(request), {"Authorization": f"Bearer {token}", "Content-Type": "text/plain"}
    )

    assert status == 200
    assert headers["content-type"] == "application/json"
    response = RankingResponse.model_validate_json(body)
    assert response.ranked_ids == [i["id"] for i in reversed(request["items"])]
    assert response.metadata.intervention_on is True
    assert await sync_to_async(Slate.objects.filter(participant_id=participant.public_id).count)() == 1


async def test_a_chunked_body_over_the_limit_is_refused_with_413(enrol, settings) -> None:
    settings.RANK_MAX_BODY_BYTES = 1000
    _participant, token = await enrol("control")

    status, _headers, body = await call_asgi(
        "POST", "/rank", b"x" * 5000, {"Authorization": f"Bearer {token}"}, chunk=700
    )

    assert status == 413
    assert orjson.loads(body)["error"]["code"] == "too_large"


async def test_unknown_token_on_the_asgi_path_gets_401_json() -> None:
    request = orjson.dumps(prc_request("p_nobody"))

    status, _headers, body = await call_asgi("POST", "/rank", request, {"Authorization": "Bearer nope"})

    assert status == 401
    assert orjson.loads(body)["error"]["code"] == "unauthenticated"


async def test_ranker_service_path_is_served_by_the_bare_app_and_needs_a_key() -> None:
    status, _headers, body = await call_asgi("POST", "/rankers/control/rank", b"{}")

    assert status == 401
    assert orjson.loads(body)["error"]["code"] == "unauthenticated"


async def test_other_paths_reach_django() -> None:
    status, _headers, body = await call_asgi("GET", "/healthz")

    assert status == 200
    assert orjson.loads(body)["database"] == "ok"


async def test_rank_with_a_trailing_slash_is_not_redirected() -> None:
    status, headers, _body = await call_asgi("POST", "/rank/", b"{}")

    assert status == 404
    assert "location" not in headers
