"""Input and output shapes of the extension enrolment API."""

from __future__ import annotations

from rest_framework import serializers

from participants.behaviour import BATCH_KEY_LENGTH, ENGAGEMENT_ACTIONS, EVENT_KINDS, MAX_BATCH, VERSION_LENGTH
from participants.paper import PLATFORMS


class RegisterInput(serializers.Serializer):
    enrolment_code = serializers.CharField(max_length=64, trim_whitespace=True)
    install_key = serializers.CharField(
        min_length=8, max_length=100, help_text="A random id the extension keeps; repeating it makes register safe."
    )
    extension_version = serializers.CharField(max_length=50, required=False, default="", allow_blank=True)


class SlateSizes(serializers.Serializer):
    posts = serializers.JSONField(help_text="Items per ranking request; a list means successive passes.")
    comments = serializers.JSONField(help_text="null means all available.")


class ClientConfig(serializers.Serializer):
    slate_sizes = serializers.DictField(child=SlateSizes())
    heartbeat_interval_s = serializers.IntegerField()


class RegisterOutput(serializers.Serializer):
    token = serializers.CharField(help_text="Send as 'Authorization: Bearer <token>'. Shown once.")
    user_id = serializers.CharField(help_text="Pseudonymous id: the PRC request's session.user_id.")
    config = ClientConfig()


class HeartbeatInput(serializers.Serializer):
    platform = serializers.ChoiceField(choices=[*PLATFORMS, ""], required=False, default="")
    active_seconds = serializers.IntegerField(min_value=0, max_value=86400, required=False, default=0)
    heartbeat_id = serializers.CharField(
        max_length=100, required=False, default="", allow_blank=True, help_text="Stable id: a repeat is stored once."
    )


class HeartbeatOutput(serializers.Serializer):
    collect = serializers.BooleanField(
        help_text="False once the participant has withdrawn or the study has closed: stop collecting."
    )
    included = serializers.BooleanField()
    study_closed = serializers.BooleanField(help_text="The study has ended: the extension may remove itself.")
    heartbeat_interval_s = serializers.IntegerField()


class UninstallOutput(serializers.Serializer):
    uninstalled_at = serializers.DateTimeField()


class EventInput(serializers.Serializer):
    """One behaviour event (documentation of the shape; ``participants.behaviour.check_event`` checks it)."""

    kind = serializers.ChoiceField(choices=EVENT_KINDS)
    platform = serializers.ChoiceField(choices=PLATFORMS)
    at = serializers.DateTimeField(help_text="ISO 8601 with a time zone; not in the future, not before joining.")
    item_id = serializers.CharField(required=False, max_length=255, help_text="view and engagement: the item.")
    action = serializers.ChoiceField(choices=ENGAGEMENT_ACTIONS, required=False, help_text="engagement only.")
    active_page = serializers.BooleanField(required=False, help_text="activity: the platform is the active page.")
    user_active = serializers.BooleanField(required=False, help_text="activity: mouse or keyboard in this minute.")
    user_id = serializers.CharField(required=False, help_text="Optional; if sent, must be the token's user_id.")


class EventBatchSchema(serializers.Serializer):
    """The batch as the OpenAPI schema shows it; ``participants.behaviour.check_batch`` checks it."""

    batch_key = serializers.CharField(
        min_length=BATCH_KEY_LENGTH[0], max_length=BATCH_KEY_LENGTH[1],
        help_text="A random id per batch; a repeat is stored once.",
    )  # fmt: skip
    extension_version = serializers.CharField(max_length=VERSION_LENGTH, required=False, allow_blank=True)
    events = serializers.ListField(child=EventInput(), min_length=1, max_length=MAX_BATCH)


class EventRejection(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the event in the batch.")
    code = serializers.CharField(help_text="unknown_type, unknown_participant, impossible_timestamp, invalid...")
    message = serializers.CharField()
    field = serializers.CharField(allow_null=True)


class EventBatchOutput(serializers.Serializer):
    batch_key = serializers.CharField()
    accepted = serializers.IntegerField(help_text="Events stored.")
    rejected = EventRejection(many=True)
    repeat = serializers.BooleanField(help_text="This batch key was sent before: nothing new was stored.")
