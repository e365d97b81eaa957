import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prc_site.settings")

app = Celery("prc_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Subpackages with tasks of their own (autodiscovery finds only <app>.tasks).
app.autodiscover_tasks(["rankers.content"])
