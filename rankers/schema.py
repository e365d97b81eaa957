"""OpenAPI for the ranking endpoints, which are async Django views that drf-spectacular cannot see.

``add_ranking_paths`` is a spectacular postprocessing hook: it adds ``/rank``
and ``/rankers/{name}/rank`` with the PRC package's own pydantic schemas.
"""

from __future__ import annotations

from typing import Any

from ranking_challenge.request import RankingRequest
from ranking_challenge.response import RankingResponse

REF = "#/components/schemas/{model}"
# Our one addition to the PRC request (other servers ignore it): which of the platform's passes this is.
SLATE_PASS = {
    "type": "integer",
    "minimum": 1,
    "nullable": True,
    "description": "Which pass of Table S11 this request is (Facebook posts: 1 = the first 10, 2 = the next 35). "
    "Omitted: inferred from the number of items.",
}


def openapi_30(node: Any) -> Any:
    """pydantic writes JSON Schema 2020-12; OpenAPI 3.0 spells ``anyOf: [X, null]`` as ``X, nullable``."""
    if isinstance(node, list):
        return [openapi_30(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {key: openapi_30(value) for key, value in node.items()}
    if "const" in node:
        node["enum"] = [node.pop("const")]
    options = node.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        del node["anyOf"]
        if len(rest) == 1 and "$ref" not in rest[0]:
            node.update(rest[0])
        else:
            node["anyOf"] = rest
        node["nullable"] = True
    return node


def _components() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in (RankingRequest, RankingResponse):
        schema = model.model_json_schema(ref_template=REF)
        schemas.update(openapi_30(schema.pop("$defs", {})))
        schemas[model.__name__] = openapi_30(schema)
    schemas["RankingRequest"]["properties"]["slate_pass"] = SLATE_PASS
    error: dict[str, Any] = {
        "type": "object",
        "properties": {
            "code": {"type": "string"},
            "message": {"type": "string"},
            "field": {"type": "string", "nullable": True},
        },
    }
    schemas["RankError"] = {"type": "object", "properties": {"error": error}, "required": ["error"]}
    return schemas


def _errors(*codes: tuple[str, str]) -> dict[str, Any]:
    content = {"application/json": {"schema": {"$ref": REF.format(model="RankError")}}}
    return {code: {"description": text, "content": content} for code, text in codes}


def _operation(
    operation_id: str, summary: str, security: str, extra: list[dict[str, Any]], errors: dict[str, Any]
) -> dict[str, Any]:
    body_schema = {"$ref": REF.format(model="RankingRequest")}
    return {
        "operationId": operation_id,
        "summary": summary,
        "tags": ["ranking"],
        "parameters": extra,
        "security": [{security: []}],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": body_schema}, "text/plain": {"schema": body_schema}},
        },
        "responses": {
            "200": {
                "description": "The feed in the order to show, with any inserted items.",
                "content": {"application/json": {"schema": {"$ref": REF.format(model="RankingResponse")}}},
            },
            **errors,
        },
    }


def add_ranking_paths(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    components = result.setdefault("components", {})
    components.setdefault("schemas", {}).update(_components())
    schemes = components.setdefault("securitySchemes", {})
    schemes["extensionToken"] = {"type": "http", "scheme": "bearer", "description": "Or X-Extension-Token."}
    schemes["rankerServiceKey"] = {"type": "http", "scheme": "bearer", "description": "From create_ranker_key."}
    common = (("400", "Malformed JSON or session."), ("401", "Unknown token or key."), ("413", "Body too large."))
    result.setdefault("paths", {})["/rank"] = {
        "post": _operation(
            "rank",
            "Rank a feed slate for an enrolled participant (PRC schema; answered after a fixed hold).",
            "extensionToken",
            [],
            _errors(*common, ("403", "session.user_id is not this token's participant."), ("429", "Rate limited.")),
        )
    }
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    result["paths"]["/rankers/{name}/rank"] = {
        "post": _operation(
            "ranker_service_rank",
            "Run one registered ranker alone, statelessly (PRC schema in and out).",
            "rankerServiceKey",
            [name],
            _errors(*common, ("404", "No ranker with this name.")),
        )
    }
    return result
