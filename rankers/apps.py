from django.apps import AppConfig


class RankersConfig(AppConfig):
    name = "rankers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from rankers import signals  # noqa: F401  (connects the receivers)
