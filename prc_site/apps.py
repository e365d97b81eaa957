import os

from django.apps import AppConfig

from prc_site.lib import forks


class PrcSiteConfig(AppConfig):
    """Finds the platform-wide management commands (run_platform) and makes a forked process's thread pools work."""

    name = "prc_site"
    verbose_name = "Platform"

    def ready(self) -> None:
        os.register_at_fork(after_in_child=forks.renew_asgiref_executors)
