from django.apps import AppConfig


class RankersConfig(AppConfig):
    name = "rankers"
    default_auto_field = "django.db.models.BigAutoField"
