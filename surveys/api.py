"""Survey endpoints: the flag the extension reads, and the external tool's completion callback."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from participants.api import ExtensionView
from prc_site.lib.api_errors import error_response
from surveys import messaging, services


class OpenSurveyOutput(serializers.Serializer[dict[str, object]]):
    wave = serializers.CharField()
    name = serializers.CharField()
    url = serializers.CharField()
    closes_at = serializers.DateTimeField(allow_null=True)
    reminder = serializers.BooleanField(help_text="True once at least one reminder has been sent.")


class SurveysOutput(serializers.Serializer[dict[str, object]]):
    surveys = OpenSurveyOutput(many=True)


class ExtensionSurveysView(ExtensionView):
    """Surveys waiting for this participant now: the extension shows a notice while the list is not empty."""

    @extend_schema(request=None, responses={200: SurveysOutput})
    def get(self, request: Request) -> Response:
        participant, _ = self.caller(request)
        rows = messaging.extension_flags(
            participant=participant, at=timezone.now(), base_url=request.build_absolute_uri("/")
        )
        return Response(SurveysOutput({"surveys": rows}).data)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def completion_callback(request: HttpRequest) -> HttpResponse:
    """The external tool's signed completion: GET (the participant's browser is redirected here at the
    end of the external survey: a thank-you page) or POST (server to server: JSON)."""
    query = request.META.get("QUERY_STRING", "")
    try:
        services.accept_callback(query_string=query, params=request.GET.dict(), at=timezone.now())
    except services.SurveyError as exc:
        status = 403 if exc.code == "bad_signature" else 404 if exc.code.startswith("unknown") else 409
        if request.method == "POST":
            return error_response(exc.code, exc.message, status=status)
        return render(request, "surveys/message.html", {"title": "Survey", "text": exc.message}, status=status)
    if request.method == "POST":
        return HttpResponse('{"completed": true}', content_type="application/json")
    text = "Your answers have been recorded. Thank you!"
    return render(request, "surveys/message.html", {"title": "Thank you!", "text": text})
