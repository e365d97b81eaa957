"""Input and output shapes of the extension enrolment API."""

from __future__ import annotations

from rest_framework import serializers

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
