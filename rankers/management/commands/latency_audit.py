"""``manage.py latency_audit --study <slug> [--start YYYY-MM-DD] [--end YYYY-MM-DD] [--platform P]``.

Prints the delivery page's equal-latency audit (``rankers.latency_audit``) as plain text, for a methods
section: served-time p50 and p95 per arm and platform after baseline, each arm's p50 minus control's, the
share of late answers, and the flags. Exits with status 1 when anything is flagged, so a script can check it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Min
from django.utils import timezone

from participants.models import Study
from prc_site.lib.commands import iso_date
from rankers import dashboard
from rankers.latency_audit import LATE_MARGIN_MS, LATE_SHARE_LIMIT, P50_TOLERANCE_MS, LatencyAudit
from rankers.models_rollups import DailyArmRollup


class Command(BaseCommand):
    help = "Print the equal-latency audit of a study's arms after baseline (exit status 1 when flagged)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--study", required=True, help="Study slug.")
        parser.add_argument("--start", type=iso_date, help="First day (study time zone); default: the first rolled up.")
        parser.add_argument("--end", type=iso_date, help="Last day (study time zone); default: today.")
        parser.add_argument("--platform", default="", help="facebook, reddit or twitter; default: all.")

    def handle(self, *args: Any, **options: Any) -> None:
        study = Study.objects.filter(slug=options["study"]).first()
        if study is None:
            raise CommandError(f"No study {options['study']!r}.")
        today = timezone.now().astimezone(ZoneInfo(study.timezone)).date()
        end = options["end"] or today
        first = DailyArmRollup.objects.for_study(study.pk).aggregate(first=Min("day"))["first"]
        start = options["start"] or first or end
        if start > end:
            raise CommandError("--start is after --end.")
        audit = dashboard.latency_audit(study, start=start, end=end, platform=options["platform"])
        if audit is None:
            raise CommandError(f"Study {study.slug} has no control arm to compare with.")
        self.stdout.write(render(audit, study=study, start=start, end=end))
        if audit.flagged:
            raise CommandError("Latency differs between arms (see the flags above).", returncode=1)


def render(audit: LatencyAudit, *, study: Study, start: dt.date, end: dt.date) -> str:
    lines = [
        f"Latency audit: {study.name} ({study.slug}), {start} to {end}, slates after each participant's baseline.",
        f"Flag: p50 more than {P50_TOLERANCE_MS:.0f} ms from control's on the same platform, or more than "
        f"{LATE_SHARE_LIMIT:.0%} of answers later than hold + {LATE_MARGIN_MS:.0f} ms.",
        "",
        f"{'platform':<10} {'arm':<28} {'slates':>8} {'p50 ms':>8} {'p95 ms':>8} {'Δp50 ms':>8} {'late':>7}  flags",
    ]
    for cell in audit.cells:
        lines.append(
            f"{cell.platform or 'all':<10} {cell.arm_slug:<28} {cell.slates:>8} {_ms(cell.p50_ms):>8} "
            f"{_ms(cell.p95_ms):>8} {_ms(cell.p50_diff_ms):>8} {_share(cell.late_share):>7}  {'; '.join(cell.flags)}"
        )
    worst = audit.largest_p50_diff
    lines.append("")
    if worst is not None:
        lines.append(
            f"Largest p50 difference from control: {_ms(worst.p50_diff_ms)} ms "
            f"({worst.arm_slug}, {worst.platform or 'all platforms'})."
        )
    lines.append("FLAGGED" if audit.flagged else "No arm's latency differs from control's beyond the limits.")
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"
