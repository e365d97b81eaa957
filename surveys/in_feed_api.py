"""The extension's in-feed question API (supplementary section 2): one view per operation.

``GET next`` says which question to show on this platform now (and records that it was shown); answers and
dismissals are idempotent by the client's key. Errors use the project's one format.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from participants.api import ExtensionView
from participants.paper import PLATFORMS
from prc_site.lib.api_errors import ApiError
from surveys import in_feed_schedule, services
from surveys.models import InFeedPrompt


class InFeedQuestionOutput(serializers.Serializer[dict[str, object]]):
    key = serializers.CharField()
    text = serializers.CharField(help_text="Piped for this participant and platform.")
    options = serializers.ListField(
        child=serializers.DictField(), help_text='In display order: [{"value": ..., "label": ...}]; send the value.'
    )


class InFeedPromptOutput(serializers.Serializer[dict[str, object]]):
    prompt_id = serializers.IntegerField()
    question = InFeedQuestionOutput()
    day = serializers.IntegerField(help_text="1, 2 or 3: the day of its three-day offer.")
    offered_until = serializers.DateField(help_text="Last study-local day it is offered if not answered.")


class NextInFeedInput(serializers.Serializer[dict[str, object]]):
    platform = serializers.ChoiceField(choices=PLATFORMS)


class NextInFeedOutput(serializers.Serializer[dict[str, object]]):
    prompt = InFeedPromptOutput(allow_null=True, help_text="null: no question now.")


class InFeedAnswerInput(serializers.Serializer[dict[str, object]]):
    prompt_id = serializers.IntegerField(min_value=1)
    value = serializers.JSONField(help_text="One of the question's option values.")
    client_key = serializers.CharField(min_length=8, max_length=100, help_text="Stable id: a repeat is stored once.")


class InFeedDismissInput(serializers.Serializer[dict[str, object]]):
    prompt_id = serializers.IntegerField(min_value=1)
    client_key = serializers.CharField(min_length=8, max_length=100, help_text="Stable id: a repeat is stored once.")


class InFeedClosedOutput(serializers.Serializer[dict[str, object]]):
    prompt_id = serializers.IntegerField(source="pk")
    status = serializers.CharField()
    answer = serializers.JSONField(allow_null=True)
    at = serializers.DateTimeField()


@dataclass(frozen=True)
class ShownPrompt:
    """A prompt as the extension sees it (from a row, or from the ASGI path's query)."""

    prompt_id: int
    question_key: str
    text: str
    options: list[dict[str, Any]]
    first_shown_on: dt.date
    last_shown_on: dt.date

    @classmethod
    def of(cls, prompt: InFeedPrompt) -> ShownPrompt:
        question = prompt.question
        return cls(prompt.pk, question.key, prompt.text, question.options, prompt.first_shown_on, prompt.last_shown_on)


def next_body(shown: ShownPrompt | None) -> dict[str, Any]:
    """The body of ``GET next`` (``NextInFeedOutput``), for the DRF view and the ASGI path alike."""
    if shown is None:
        return {"prompt": None}
    offered_until = shown.first_shown_on + dt.timedelta(days=in_feed_schedule.OFFER_DAYS - 1)
    return {
        "prompt": {
            "prompt_id": shown.prompt_id,
            "question": {"key": shown.question_key, "text": shown.text, "options": shown.options},
            "day": (shown.last_shown_on - shown.first_shown_on).days + 1,
            "offered_until": offered_until.isoformat(),
        }
    }


def _closed_body(prompt: InFeedPrompt) -> dict[str, object]:
    answered = prompt.answered_at is not None
    at = prompt.answered_at if answered else prompt.dismissed_at
    return {"pk": prompt.pk, "status": "answered" if answered else "dismissed", "answer": prompt.answer, "at": at}


def _in_feed_error(exc: services.InFeedError) -> ApiError:
    return ApiError(exc.code, exc.message, status_code=exc.status, field=exc.field)


# Under uvicorn, surveys.in_feed_asgi answers GET on this path on the event loop, with the same contract; this
# view serves Django's own handler (the test client, another server) and describes the endpoint in OpenAPI.
class NextInFeedQuestionView(ExtensionView):
    """The question to show in the feed on this platform now, or ``{"prompt": null}``. Asking records the exposure."""

    @extend_schema(parameters=[NextInFeedInput], responses={200: NextInFeedOutput})
    def get(self, request: Request) -> Response:
        data = NextInFeedInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        participant, _ = self.caller(request)
        prompt = services.next_in_feed_prompt(participant=participant, platform=str(data.validated_data["platform"]))
        return Response(next_body(None if prompt is None else ShownPrompt.of(prompt)))


class _ClosingView(ExtensionView):
    def close(
        self,
        request: Request,
        input_class: type[serializers.Serializer[dict[str, object]]],
        service: Callable[..., tuple[InFeedPrompt, bool]],
    ) -> Response:
        """Validate the body, close the caller's prompt through ``service``; 201 the first time, 200 for a
        repeat with the same client key."""
        data = input_class(data=request.data)
        data.is_valid(raise_exception=True)
        participant, _ = self.caller(request)
        try:
            prompt, created = service(participant=participant, **data.validated_data)
        except services.InFeedError as exc:
            raise _in_feed_error(exc) from exc
        return Response(InFeedClosedOutput(_closed_body(prompt)).data, status=201 if created else 200)


class InFeedAnswerView(_ClosingView):
    """Answer a question; 201 the first time, 200 with the first result for a repeat with the same client key."""

    @extend_schema(request=InFeedAnswerInput, responses={200: InFeedClosedOutput, 201: InFeedClosedOutput})
    def post(self, request: Request) -> Response:
        return self.close(request, InFeedAnswerInput, services.answer_in_feed_prompt)


class InFeedDismissView(_ClosingView):
    """Close a question without answering; it is not offered again."""

    @extend_schema(request=InFeedDismissInput, responses={200: InFeedClosedOutput, 201: InFeedClosedOutput})
    def post(self, request: Request) -> Response:
        return self.close(request, InFeedDismissInput, services.dismiss_in_feed_prompt)
