from django.apps import AppConfig


class ParticipantsConfig(AppConfig):
    name = "participants"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from participants import exports  # models are ready only now
        from participants.roles import connect_account_audit

        connect_account_audit()
        from participants.prereg import connect_deviation_log

        connect_deviation_log()
        exports.register_datasets(*exports.PARTICIPANT_DATASETS)
