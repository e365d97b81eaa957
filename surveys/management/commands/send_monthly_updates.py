"""``manage.py send_monthly_updates [--at ISO-8601]``: the periodic job, run by hand."""

from __future__ import annotations

from prc_site.lib.commands import ClockedJobCommand
from surveys import messaging


class Command(ClockedJobCommand):
    help = "Run surveys.messaging.send_monthly_updates once and print what it did."
    job = staticmethod(messaging.send_monthly_updates)
