"""Seed the demo: a researcher login per role and a superuser login, the content inventory, and the demo study,
``prc-demo``, whose every participant, slate, event, survey answer and payment comes from a dress rehearsal
(``prc_site.simulation``): synthetic people through the real endpoints over four simulated weeks, under the paper's six
arms, with a planted effect the effects page recovers.

The rehearsal's plan is ``demo_plan``: three vendors with their shares of arrivals, a 7-day baseline, the 500 ms hold
ramped up over it, the arms going live one platform at a time, a few withdrawals, and every credit paid out on the
last day. Every arrival comes through a vendor link, as on the real pages (the old demo's "Unknown" source had no way
in). The content inventory is stored before the rehearsal (so the inserting arms insert from it) and its queues are
built again after it (personalized on what the rehearsal served and answered).

Idempotent: logins are reset, the inventory is refreshed, and the rehearsal only runs when ``prc-demo`` does not
exist yet (restarting the demo keeps its data).
"""

from __future__ import annotations

import os
import time
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from participants.models import RecruitmentSource, Study
from participants.paper import PAPER_ARMS
from participants.roles import OPS, PI, READER, create_roles
from prc_site import simulation
from rankers.content import demo as demo_content
from surveys import effects

STUDY_SLUG = "prc-demo"
# slug: (name, cost per complete, share of arrivals)
VENDORS = {
    "rep-data": ("Rep Data", Decimal("3.00"), 45.0),
    "cloud-research": ("Cloud Research", Decimal("4.50"), 25.0),
    "prodege": ("Prodege", Decimal("2.50"), 22.0),
}
PARTICIPANTS, WEEKS, WORKERS = 48, 4, 2
PLANTED = ("affective_polarization=-0.5", "active_minutes=-6")


def demo_plan(participants: int = PARTICIPANTS, weeks: int = WEEKS) -> simulation.Plan:
    """The demo's rehearsal; smaller ones (tests) keep everything but the size."""
    arms = tuple(arm.slug for arm in PAPER_ARMS)
    return simulation.Plan(
        slug=STUDY_SLUG,
        name="PRC demo (simulated)",
        participants=participants,
        weeks=weeks,
        seed=2024,
        effects=simulation.merge_effects([simulation.parse_effect(e, arms) for e in PLANTED]),
        arms=arms,
        baseline_days=7,
        inclusion_days=7,
        vendors=tuple((slug, share) for slug, (_name, _cost, share) in VENDORS.items()),
        withdraw_share=0.05,
        pay_out=True,
        hold_ms=500,
        platform_starts={"facebook": 1, "reddit": 3, "twitter": 5},
    )


class Command(BaseCommand):
    help = "Create the demo's logins and content, and rehearse the demo study into being (safe to run again)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--participants", type=int, default=PARTICIPANTS, help="People the rehearsal brings.")
        parser.add_argument("--weeks", type=int, default=WEEKS, help="Simulated weeks, ending yesterday.")
        parser.add_argument("--workers", type=int, default=WORKERS, help="Processes that live the people's days.")
        parser.add_argument(
            "--no-estimates", action="store_true", help="Leave the effect estimates to the nightly run (beat)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        refuse_in_production("seed_demo")
        logins = seed_logins()
        content = demo_content.seed_demo_content()  # before the rehearsal: its inserting arms insert from it
        self.stdout.write(f"Demo content: {content.sources} sources, {content.new_posts} new posts")
        study = Study.objects.filter(slug=STUDY_SLUG).first()
        if study is None:
            began = time.monotonic()
            plan = demo_plan(options["participants"], options["weeks"])
            study, tally = simulation.simulate_study(plan, workers=options["workers"])
            name_vendors(study)
            refreshed = demo_content.personalize()
            estimates = "effect estimates left to the nightly run"
            if not options["no_estimates"]:
                run = effects.run_effects(study=study)
                estimates = f"{len(run.estimates)} effect estimates ({run.status})"
            self.stdout.write(
                f"Study {study.name!r} ({study.slug}) rehearsed in {time.monotonic() - began:.0f} s: "
                f"{tally.arrivals} arrivals, {tally.enrolled} installed, {tally.slates} slates, {tally.events} events, "
                f"{tally.surveys} surveys, {tally.paid} payments; {refreshed} personalized queues; {estimates}"
            )
        else:
            self.stdout.write(f"Study {study.name!r} ({study.slug}) exists already: its data is kept")
        self.stdout.write("Researcher logins (at /admin/ and /research/funnel/):")
        for username, role in logins:
            self.stdout.write(f"  {username:<7} {role}")
        self.stdout.write(f"  password: {demo_password()} (set DEMO_PASSWORD to change it)")


def refuse_in_production(command: str) -> None:
    """Demo data (synthetic people, logins with a published password) never goes near a real study."""
    if settings.PRODUCTION:
        raise CommandError(f"{command} is refused when PRC_ENV=production: it creates demo data and logins")


def demo_password() -> str:
    return os.environ.get("DEMO_PASSWORD") or "prc-demo-pass"


def name_vendors(study: Study) -> None:
    """Give the rehearsal's vendors the demo's names and costs per complete (their links and shares came from the
    plan)."""
    for slug, (name, cost, _share) in VENDORS.items():
        RecruitmentSource.objects.filter(study=study, slug=slug).update(name=name, cost_per_complete=cost)


def seed_logins() -> list[tuple[str, str]]:
    """One login per role, holding exactly that role, and ``admin``, the one superuser (no role needed)."""
    groups = create_roles()
    logins: list[tuple[str, str | None]] = [("pi", PI), ("reader", READER), ("ops", OPS), ("admin", None)]
    user_model = get_user_model()
    for username, role in logins:
        user, _ = user_model.objects.get_or_create(username=username)
        user.is_staff, user.is_superuser = True, role is None
        user.set_password(demo_password())
        user.save()
        user.groups.set([groups[role]] if role else [])
    return [(username, role or "superuser (users, raw permissions)") for username, role in logins]
