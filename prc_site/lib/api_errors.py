"""One error format for every API endpoint.

``{"error": {"code": ..., "message": ..., "field": ...}}``; ``field`` is null
when the problem is not tied to one input field.
"""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def error_body(code: str, message: str, field: str | None = None) -> dict[str, dict[str, str | None]]:
    return {"error": {"code": code, "message": message, "field": field}}


def error_response(code: str, message: str, *, status: int, field: str | None = None) -> JsonResponse:
    """A plain Django JSON error, for views outside DRF (such as /rank)."""
    return JsonResponse(error_body(code, message, field), status=status)


class ApiError(exceptions.APIException):
    """Raise from a DRF view to answer with the standard error body."""

    def __init__(self, code: str, message: str, *, status_code: int = 400, field: str | None = None):
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.error_code = code
        self.field = field


def _first_error(detail: Any, prefix: str = "") -> tuple[str | None, str, str]:
    """Walk DRF's nested validation detail to its first message: (field, message, code)."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = key if key != "non_field_errors" else ""
            path = f"{prefix}.{name}" if prefix and name else (name or prefix)
            return _first_error(value, path)
    if isinstance(detail, list) and detail:
        return _first_error(detail[0], prefix)
    code = getattr(detail, "code", "invalid")
    return (prefix or None, str(detail), str(code))


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApiError):
        return Response(error_body(exc.error_code, str(exc.detail), exc.field), status=exc.status_code)
    if isinstance(exc, exceptions.ValidationError):
        field, message, code = _first_error(exc.detail)
        return Response(error_body(code, message, field), status=status.HTTP_400_BAD_REQUEST)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    codes: object = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
    response.data = error_body(str(codes), str(detail))
    return response
