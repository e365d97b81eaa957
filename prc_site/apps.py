from django.apps import AppConfig


class PrcSiteConfig(AppConfig):
    """Registered only so that platform-wide management commands (run_platform) are found."""

    name = "prc_site"
    verbose_name = "Platform"
