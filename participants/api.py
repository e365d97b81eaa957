"""The extension's enrolment API: register, heartbeat, uninstall (one view per operation).

Errors use the project's one format, ``{"error": {"code", "message", "field"}}``. Nothing here
reveals the participant's arm.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from participants import events, services
from participants.behaviour import BatchError, check_batch
from participants.models import ExtensionInstall, Participant
from participants.paper import extension_slate_sizes
from participants.serializers import (
    EventBatchOutput,
    EventBatchSchema,
    HeartbeatInput,
    HeartbeatOutput,
    RegisterInput,
    RegisterOutput,
    UninstallOutput,
)
from participants.tokens import EXTENSION_CHALLENGE, extension_token, participant_for_token
from prc_site.lib.api_errors import ApiError


class ExtensionTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <token>`` or ``X-Extension-Token``; sets request.user to the Participant
    and request.auth to the ExtensionInstall. A view with ``allow_uninstalled = True`` also accepts
    the token of an install already marked uninstalled (so that repeating an uninstall is harmless).
    """

    def authenticate(self, request: Request) -> tuple[Participant, ExtensionInstall] | None:
        token = extension_token(request.headers)
        if not token:
            return None
        view = request.parser_context.get("view") if request.parser_context else None
        found = participant_for_token(token, include_uninstalled=getattr(view, "allow_uninstalled", False))
        if found is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked extension token.", code="invalid_token")
        return found

    def authenticate_header(self, request: Request) -> str:
        return EXTENSION_CHALLENGE


class ExtensionTokenScheme(OpenApiAuthenticationExtension):
    """Describes ``ExtensionTokenAuthentication`` in the generated OpenAPI schema."""

    target_class = ExtensionTokenAuthentication
    name = "extensionToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "Token from /api/v1/extension/register."}


class HasExtensionToken(permissions.BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.auth, ExtensionInstall)


class ExtensionView(APIView):
    authentication_classes = [ExtensionTokenAuthentication]
    permission_classes = [HasExtensionToken]

    @staticmethod
    def caller(request: Request) -> tuple[Participant, ExtensionInstall]:
        """The participant and install that ``ExtensionTokenAuthentication`` put on the request."""
        participant, install = request.user, request.auth
        assert isinstance(participant, Participant)
        assert isinstance(install, ExtensionInstall)
        return participant, install


class RegisterView(APIView):
    """Exchange the enrolment code shown after consent for an extension token and the client config.

    201 for a new install; 200 for a repeat with the same ``install_key`` (same install, rotated token).
    """

    authentication_classes: list[type[authentication.BaseAuthentication]] = []
    permission_classes: list[type[permissions.BasePermission]] = []

    @extend_schema(request=RegisterInput, responses={200: RegisterOutput})
    def post(self, request: Request) -> Response:
        data = RegisterInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            registration = services.register_extension(**data.validated_data)
        except services.EnrolmentError as exc:
            raise ApiError(exc.code, exc.message, field=exc.field) from exc
        body = {
            "token": registration.token,
            "user_id": registration.participant.public_id,
            "config": {
                "slate_sizes": extension_slate_sizes(),
                "heartbeat_interval_s": settings.PRC_HEARTBEAT_INTERVAL_S,
            },
        }
        return Response(RegisterOutput(body).data, status=201 if registration.created else 200)


class HeartbeatView(ExtensionView):
    """The extension is alive; answers whether to keep collecting."""

    @extend_schema(request=HeartbeatInput, responses={200: HeartbeatOutput})
    def post(self, request: Request) -> Response:
        data = HeartbeatInput(data=request.data)
        data.is_valid(raise_exception=True)
        participant, install = self.caller(request)
        result = services.record_heartbeat(
            participant=participant,
            install=install,
            platform=data.validated_data["platform"],
            active_seconds=data.validated_data["active_seconds"],
            client_key=data.validated_data["heartbeat_id"],
        )
        body = {
            "collect": result.collect,
            "included": result.included,
            "study_closed": result.study_closed,
            "heartbeat_interval_s": settings.PRC_HEARTBEAT_INTERVAL_S,
        }
        return Response(HeartbeatOutput(body).data)


class UninstallView(ExtensionView):
    """The extension is being removed; its token stops working."""

    allow_uninstalled = True

    @extend_schema(request=None, responses={200: UninstallOutput})
    def post(self, request: Request) -> Response:
        install = services.uninstall_extension(install=self.caller(request)[1])
        return Response(UninstallOutput({"uninstalled_at": install.uninstalled_at}).data)


class EventsView(ExtensionView):
    """A batch of behaviour events: views, engagements and per-minute activity pings.

    Each event is checked on its own: the valid ones are stored and the others listed with a reason
    (200 either way). A repeated ``batch_key`` stores nothing and gets the first answer again. A
    withdrawn participant's events are refused (403 ``withdrawn``): the extension stops collecting.
    """

    @extend_schema(
        request=EventBatchSchema,
        responses={200: EventBatchOutput, 503: OpenApiResponse(description="Busy: send again after Retry-After.")},
    )
    def post(self, request: Request) -> Response:
        batch = check_batch(request.data)
        if isinstance(batch, BatchError):
            raise ApiError(batch.code, batch.message, field=batch.field)
        try:
            result = events.ingest_events(sender=events.Sender.of(*self.caller(request)), batch=batch)
        except events.Withdrawn as exc:
            raise ApiError(*events.WITHDRAWN, status_code=403) from exc
        return Response(result.as_dict())
