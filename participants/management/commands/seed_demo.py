"""Seed the demo study: the paper's six arms, three vendors, consent, page copy, a few hundred
synthetic participants spread through the funnel over the last 30 days, a researcher login per role
and a superuser login.

Idempotent: configuration rows are upserted, logins are reset, and participants are only generated
when the demo study has none yet.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from participants.copy import DEFAULT_COPY
from participants.models import (
    Arm,
    ConsentDocument,
    ConsentRecord,
    ExtensionInstall,
    PageCopy,
    Participant,
    Payment,
    RecruitmentSource,
    Study,
    sha256_hex,
)
from participants.paper import PAPER_ARMS
from participants.roles import OPS, PI, READER, create_roles
from participants.services import assign_arm

STUDY_SLUG = "prc-demo"
PARTICIPANTS = 400
DAYS = 30
OUTCOMES = ("complete", "screenout", "overquota", "quality", "duplicate")

VENDORS = [
    # slug, name, pid parameter, cost per complete, share of arrivals
    ("rep-data", "Rep Data", "rid", Decimal("3.00"), 0.45),
    ("cloud-research", "Cloud Research", "aid", Decimal("4.50"), 0.25),
    ("prodege", "Prodege", "transaction_id", Decimal("2.50"), 0.22),
]
UNKNOWN_SHARE = 0.08
CONSENT_TEXT = (
    "Researchers are studying how the order of posts in social media feeds affects people's experience.\n\n"
    "If you take part, you install a browser extension that may reorder, add or remove posts in your Facebook, "
    "Reddit and X feeds, records which posts you see and how you engage with them, and asks short questions. "
    "You answer surveys at the start, after two months and after four months.\n\n"
    "You can withdraw at any time from your status page. Data collected so far is kept, de-identified."
)


@dataclass
class Journey:
    participant: Participant
    email_index: int


class Command(BaseCommand):
    help = "Create the demo study with synthetic participants and researcher logins (safe to run again)."

    def handle(self, *args: Any, **options: Any) -> None:
        refuse_in_production("seed_demo")
        with transaction.atomic():
            study = seed_study()
            created = 0 if study.participants.exists() else seed_participants(study, random.Random(2024))
        logins = seed_logins()
        self.stdout.write(f"Study {study.name!r} ({study.slug}): {study.arms.count()} arms, {created} new participants")
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


def seed_study() -> Study:
    today = timezone.localdate()
    study, _ = Study.objects.update_or_create(
        slug=STUDY_SLUG, defaults={"name": "PRC demo", "status": Study.Status.RUNNING}
    )
    for slug, name, weight, control in PAPER_ARMS:
        Arm.objects.update_or_create(
            study=study,
            slug=slug,
            defaults={
                "name": name,
                "ranker_key": slug,
                "allocation_weight": weight,
                "is_control": control,
                # Staggered like the paper: the intervention went live one platform at a time.
                "starts_facebook": today - dt.timedelta(days=24),
                "starts_reddit": today - dt.timedelta(days=22),
                "starts_twitter": today - dt.timedelta(days=20),
            },
        )
    for slug, name, pid_param, cost, _share in VENDORS:
        urls = {f"{o}_url": f"https://vendor.example/{slug}/{o}?{pid_param}={{pid}}" for o in OUTCOMES}
        RecruitmentSource.objects.update_or_create(
            study=study, slug=slug, defaults={"name": name, "pid_param": pid_param, "cost_per_complete": cost, **urls}
        )
    ConsentDocument.objects.get_or_create(
        study=study,
        version="1.0",
        defaults={
            "text": CONSENT_TEXT,
            "questions": ["I am 18 or older and live in the United States", "I agree to take part in this study"],
            "effective_at": timezone.now() - dt.timedelta(days=DAYS + 5),
        },
    )
    for key, (title, body) in DEFAULT_COPY.items():
        PageCopy.objects.get_or_create(study=study, key=key, defaults={"title": title, "body": body})
    return study


def seed_participants(study: Study, rng: random.Random) -> int:
    """Walk synthetic people through the funnel with consistent timestamps, then bulk-insert them."""
    now = timezone.now()
    sources = {s.slug: s for s in study.sources.all()}
    choices = [*(sources[v[0]] for v in VENDORS), None]
    shares = [*(v[4] for v in VENDORS), UNKNOWN_SHARE]
    people = []
    for n in range(PARTICIPANTS):
        source = rng.choices(choices, weights=shares)[0]
        created = now - dt.timedelta(days=rng.uniform(0.05, DAYS))
        people.append(walk(Participant(study=study, source=source, created_at=created), n, now, rng))
    Participant.objects.bulk_create(people)
    consented = sorted((p for p in people if p.consented_at), key=lambda p: (p.consented_at, p.pk))
    assign(consented)
    consent = study.consent_documents.get(version="1.0")
    ConsentRecord.objects.bulk_create(
        ConsentRecord(participant=p, document=consent, given_at=p.consented_at, answers={"agree": True})
        for p in consented
        if p.consented_at
    )
    installed = [p for p in consented if p.enrolled_at]
    ExtensionInstall.objects.bulk_create(
        ExtensionInstall(
            participant=p,
            install_key=f"demo-{p.public_id}",
            token_hash=sha256_hex(secrets.token_urlsafe(32)),
            extension_version="1.0.0",
            installed_at=p.enrolled_at,
            last_seen_at=p.withdrawn_at or now - dt.timedelta(hours=rng.uniform(0, 6)),
            uninstalled_at=p.withdrawn_at,
        )
        for p in installed
        if p.enrolled_at
    )
    # Demo ledger rows are bulk-created (the payments service is for real credits); most are paid.
    statuses = [
        rng.choice((Payment.Status.PAID,) * 3 + (Payment.Status.APPROVED, Payment.Status.OWED)) for _ in installed
    ]
    Payment.objects.bulk_create(
        Payment(
            participant=p,
            amount=Decimal("5.00"),
            kind=Payment.Kind.SURVEY,
            reason="Midline survey",
            idempotency_key=f"demo-{p.public_id}-midline",
            status=status,
            created_at=p.included_at,
            approved_at=p.included_at if status != Payment.Status.OWED else None,
            paid_at=p.included_at + dt.timedelta(days=7) if status == Payment.Status.PAID else None,
        )
        for p, status in zip(installed, statuses, strict=True)
        if p.included_at
    )
    return len(people)


def walk(p: Participant, n: int, now: dt.datetime, rng: random.Random) -> Participant:
    """Advance one person stage by stage; a stage happens only if its time is already past."""
    p.set_vendor_pid(f"{p.source.slug}-{n:05d}" if p.source else "")
    p.screener_answers = {"device": "desktop", "chrome": "yes", "desktop_share": rng.choice([30, 50, 70, 90])}
    screened = p.created_at + dt.timedelta(minutes=rng.uniform(2, 8))
    if screened > now:
        return p
    if rng.random() > 0.45:
        p.stage = Participant.Stage.SCREENED_OUT
        return finish_with_vendor(p, "screenout", screened)
    p.stage, p.screened_in_at = Participant.Stage.SCREENED_IN, screened
    consented = screened + dt.timedelta(minutes=rng.uniform(2, 10))
    if consented > now or rng.random() > 0.75:
        return p
    p.stage, p.consented_at = Participant.Stage.CONSENTED, consented
    p.email = f"demo.participant{n}@example.org"
    enrolled = consented + dt.timedelta(minutes=rng.uniform(5, 2 * 24 * 60))
    if enrolled > now or rng.random() > 0.7:
        return p
    p.stage, p.enrolled_at = Participant.Stage.ENROLLED, enrolled
    finish_with_vendor(p, "complete", enrolled)
    withdrawn = enrolled + dt.timedelta(days=rng.uniform(0.5, 20))
    if withdrawn < now and rng.random() < 0.06:
        p.stage, p.withdrawn_at = Participant.Stage.WITHDRAWN, withdrawn
    baseline = enrolled + dt.timedelta(minutes=rng.uniform(5, 3 * 24 * 60))
    if baseline < min(now, p.withdrawn_at or now) and rng.random() < 0.95:
        p.baseline_completed_at = baseline
    included = max(enrolled + dt.timedelta(days=7), p.baseline_completed_at or now)
    if p.baseline_completed_at and included < min(now, p.withdrawn_at or now) and rng.random() < 0.8:
        p.included_at = included
    return p


def finish_with_vendor(p: Participant, outcome: str, at: dt.datetime) -> Participant:
    if p.source:
        p.vendor_outcome, p.vendor_outcome_at = outcome, at
    return p


def assign(consented: list[Participant]) -> None:
    """Randomize through the live service, in consent order, so the demo's sequence passes its audit."""
    for participant in consented:
        assign_arm(participant=participant, at=participant.consented_at)


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
