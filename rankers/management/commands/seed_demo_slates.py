"""Give the demo study a slate log: 30 days of synthetic ``/rank`` answers for its enrolled participants.

Run after ``seed_demo`` (``run_platform --seed-demo`` runs both). Each participant gets a few slates a day on
one to three platforms, from enrolment until withdrawal, under the arm that would have been in effect then and
held as long as the live path would have held it (``rankers.serving.effective_arm`` and ``hold_ms``, the same
functions ``/rank`` calls). What each arm does to a slate
is made up to look like the paper's figures: control changes nothing, the bridging arms reorder, Add News and
Challenging Stereotypes insert items, Diverse Approval sometimes removes one, and a few slates fall back
with a recorded reason. The slates go through ``rankers.slatelog.write_slates_sync`` (the writer the
fallback drain uses), then the days are rolled up, so the timelines and delivery pages have something to show.

Idempotent: does nothing when the demo study already has slates.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from participants.management.commands.seed_demo import STUDY_SLUG, refuse_in_production
from participants.models import Participant, Study
from participants.paper import CONTENT_TYPES, PLATFORMS, slate_length, slate_passes, slate_size
from rankers import checks
from rankers.models import Slate, text_hash
from rankers.plugins import get_ranker
from rankers.rollups import rollup_study_day
from rankers.serving import Enrolment, arm_info, effective_arm, hold_ms
from rankers.slatelog import ContentRow, SlateRecord, order_columns, write_slates_sync
from rankers.tasks_slatelog import ensure_slate_partitions

DAYS = 30
POOL_SIZE = 300  # synthetic items per platform and content type
BATCH = 2000
RANKER_BUDGET_MS = 400.0


@dataclass(frozen=True)
class Behaviour:
    """What an arm's ranker does to a slate in the demo data."""

    shuffle: float  # spread of the rank noise, as a share of the slate length
    added: tuple[int, int] = (0, 0)  # fewest and most items inserted
    deleted: tuple[int, int] = (0, 0)
    ranker_ms: float = 40.0  # median ranker time
    fallback_rate: float = 0.0
    fallbacks: tuple[str, ...] = ()


COMMON_FALLBACKS = (checks.TIMEOUT, checks.TIMEOUT, checks.TIMEOUT, checks.EXCEPTION)
BEHAVIOURS = {
    "control": Behaviour(shuffle=0.0, ranker_ms=0.2),
    "uprank_bridging": Behaviour(shuffle=0.2, ranker_ms=70, fallback_rate=0.03, fallbacks=COMMON_FALLBACKS),
    "bridging_downrank_toxic": Behaviour(shuffle=0.25, ranker_ms=75, fallback_rate=0.03, fallbacks=COMMON_FALLBACKS),
    "challenging_stereotypes": Behaviour(
        shuffle=0.05,
        added=(0, 2),
        ranker_ms=55,
        fallback_rate=0.04,
        fallbacks=(*COMMON_FALLBACKS, checks.BAD_INSERTED_ITEM),
    ),
    "diverse_approval": Behaviour(
        shuffle=0.15, deleted=(0, 1), ranker_ms=35, fallback_rate=0.02, fallbacks=COMMON_FALLBACKS
    ),
    "add_news": Behaviour(
        shuffle=0.02,
        added=(1, 4),
        ranker_ms=25,
        fallback_rate=0.03,
        fallbacks=COMMON_FALLBACKS,
    ),
}
DEFAULT_BEHAVIOUR = Behaviour(shuffle=0.08, ranker_ms=50, fallback_rate=0.03, fallbacks=COMMON_FALLBACKS)

SUBJECTS = (
    "The city council",
    "A neighbour of mine",
    "Our school board",
    "The new bakery downtown",
    "A local volunteer group",
    "The state legislature",
    "My cousin",
    "The football team",
    "A small business owner",
    "The library",
)
PREDICATES = (
    "voted on the new bike lanes today.",
    "shared a thoughtful take on the budget debate.",
    "is organising a clean-up this weekend; everyone is welcome.",
    "posted about the election and the comments got heated.",
    "explained why both sides of the housing debate have a point.",
    "raised money for the food bank again this year.",
    "says the other party is ruining everything.",
    "wrote a long thread about what changed their mind.",
    "asked people to listen before they argue.",
    "celebrated twenty years in the neighbourhood.",
)


@dataclass(frozen=True)
class Person:
    enrolment: Enrolment  # what /rank would know about them
    until: dt.datetime  # withdrawal, or now
    platforms: tuple[str, ...]

    @property
    def public_id(self) -> str:
        return self.enrolment.public_id

    @property
    def enrolled_at(self) -> dt.datetime:
        return self.enrolment.installed_at


class Command(BaseCommand):
    help = "Log 30 days of synthetic slates for the demo study's participants and roll them up (safe to run again)."

    def handle(self, *args: Any, **options: Any) -> None:
        refuse_in_production("seed_demo_slates")
        study = Study.objects.filter(slug=STUDY_SLUG).first()
        if study is None:
            raise CommandError(f"No study {STUDY_SLUG!r}: run seed_demo first.")
        if Slate.objects.filter(study_id=study.pk).exists():
            self.stdout.write(f"Study {study.slug} already has slates; nothing to do.")
            return
        began = time.monotonic()
        ensure_slate_partitions()  # so the rows land in their month's partition, not the default one
        rng = random.Random(2025)
        now = timezone.now()
        people = demo_people(study, now, rng)
        records = list(synthetic_slates(study, people, now, rng))
        with transaction.atomic():
            for start in range(0, len(records), BATCH):
                write_slates_sync(records[start : start + BATCH])
        rows = sum(
            rollup_study_day(study_id=study.pk, day=day, tz_name=study.timezone) for day in demo_days(study, now)
        )
        self.stdout.write(
            f"Demo slates: {len(records)} for {len(people)} participants over {DAYS} days, "
            f"{rows} rollup rows ({time.monotonic() - began:.1f} s)"
        )


def demo_days(study: Study, now: dt.datetime) -> list[dt.date]:
    today = now.astimezone(ZoneInfo(study.timezone)).date()
    return [today - dt.timedelta(days=n) for n in range(DAYS - 1, -1, -1)]


def demo_people(study: Study, now: dt.datetime, rng: random.Random) -> list[Person]:
    """Enrolled participants with an arm, each on one to three platforms."""
    control = study.control_arm()
    if control is None:
        raise CommandError(f"Study {study.slug} has no control arm.")
    participants = (
        Participant.objects.filter(study=study, enrolled_at__isnull=False, assignment__isnull=False)
        .select_related("assignment__arm")
        .order_by("id")
    )
    return [
        Person(
            enrolment=Enrolment(
                public_id=p.public_id,
                study_id=study.pk,
                withdrawn=False,  # each slate is made before the withdrawal (``until``)
                consent_ok=True,
                installed_at=p.enrolled_at,
                baseline_days=study.baseline_days,
                hold_ms=study.rank_hold_ms,
                ramp_days=study.ramp_days,
                arm=arm_info(p.assignment.arm),
                control=arm_info(control),
            ),
            until=min(p.withdrawn_at or now, now),
            platforms=tuple(rng.sample(PLATFORMS, rng.choice((1, 1, 2, 2, 3)))),
        )
        for p in participants
        if p.enrolled_at is not None
    ]


def synthetic_slates(
    study: Study, people: Sequence[Person], now: dt.datetime, rng: random.Random
) -> Iterator[SlateRecord]:
    """A few slates per participant, platform and day, in time order per participant."""
    pools = {key: content_pool(*key) for key in ((p, t) for p in PLATFORMS for t in CONTENT_TYPES)}
    stored: set[str] = set()  # content goes with the first slate that shows it, as on the live path
    tz = ZoneInfo(study.timezone)
    for day in demo_days(study, now):
        morning = dt.datetime.combine(day, dt.time(7), tzinfo=tz)
        for person in people:
            for platform in person.platforms:
                for _ in range(rng.randint(1, 5)):
                    at = morning + dt.timedelta(hours=rng.uniform(0, 16.5))
                    if person.enrolled_at <= at < person.until:
                        yield synthetic_slate(study, person, platform, at, pools, stored, rng)


def content_pool(platform: str, content_type: str) -> list[ContentRow]:
    rng = random.Random(f"{platform}-{content_type}")
    rows = []
    for n in range(POOL_SIZE):
        text = f"{rng.choice(SUBJECTS)} {rng.choice(PREDICATES)}"
        title = text.split(" ", 4)[-1].capitalize() if platform == "reddit" and content_type == "post" else ""
        rows.append(
            ContentRow(
                platform=platform,
                item_id=f"demo-{platform}-{content_type}-{n:04d}",
                text_hash=text_hash(text, title),
                type=content_type,
                post_id=f"demo-{platform}-post-{n % 40:04d}" if content_type == "comment" else "",
                parent_id="",
                title=title,
                text=text,
                author_name_hash=f"{rng.getrandbits(256):064x}",
                created_at=(timezone.now() - dt.timedelta(hours=rng.uniform(1, 24 * DAYS))).isoformat(),
                embedded_urls=[],
            )
        )
    return rows


def request_size(platform: str, content_type: str, pass_number: int, rng: random.Random) -> int:
    """Table S11's size for this pass; "all available" comment threads vary in length."""
    return slate_size(platform, content_type, pass_number) or rng.randint(8, 40)


def synthetic_slate(
    study: Study,
    person: Person,
    platform: str,
    at: dt.datetime,
    pools: dict[tuple[str, str], list[ContentRow]],
    stored: set[str],
    rng: random.Random,
) -> SlateRecord:
    content_type = "comment" if platform != "facebook" and rng.random() < 0.15 else "post"
    pass_number = rng.randint(1, len(slate_passes(platform, content_type)))
    shown = rng.sample(pools[(platform, content_type)], request_size(platform, content_type, pass_number, rng))
    original = [row.item_id for row in shown]
    effective = effective_arm(person.enrolment, platform, at)
    # Never None here: everyone in the demo log is consented, assigned and not yet withdrawn.
    arm = effective.arm or person.enrolment.control
    behaviour = BEHAVIOURS.get(arm.ranker_key, DEFAULT_BEHAVIOUR)
    fallback = ""
    if behaviour.fallbacks and rng.random() < behaviour.fallback_rate:
        fallback = rng.choice(behaviour.fallbacks)
    n_scored = scored_items(arm.ranker_key, len(shown), rng)
    if n_scored == 0 and not fallback:
        fallback = checks.UNSCORED
    returned = original if fallback or arm.is_control else reordered(original, behaviour, rng)
    content = [row for row in shown if row.item_id not in stored]
    stored.update(row.item_id for row in content)
    ranker_ms = behaviour.ranker_ms * math.exp(rng.gauss(0, 0.4))
    hold = hold_ms(person.enrolment, at)
    if fallback == checks.TIMEOUT:
        ranker_ms = RANKER_BUDGET_MS + rng.uniform(0.2, 4)
    return SlateRecord(
        served_at=at.astimezone(dt.UTC).isoformat(),
        participant_id=person.public_id,
        study_id=study.pk,
        arm=person.enrolment.arm.slug if person.enrolment.arm else arm.slug,
        effective_arm=arm.slug,
        ranker_key=arm.ranker_key,
        platform=platform,
        content_type=content_type,
        session_id=f"demo-{rng.getrandbits(64):016x}",
        original_hashes=[row.text_hash for row in shown],
        **order_columns(
            original, returned, slate_length=slate_length(platform, content_type, pass_number, len(original))
        ),
        slate_pass=pass_number,
        invalid_items={},
        ranker_ms=round(ranker_ms, 2),
        served_ms=round(hold + rng.uniform(1.5, 12), 2),
        fallback_reason=fallback,
        intervention_on=not arm.is_control and not fallback,
        prefetch=rng.random() < 0.1,
        content=content,
        hold_ms=round(hold, 2),
        phase=effective.reason,
        n_scored=n_scored,
    )


def scored_items(ranker_key: str, n_items: int, rng: random.Random) -> int | None:
    """How many items the scorer covered: None for rankers that read no attributes; now and then none at all."""
    try:
        reads_attributes = bool(getattr(get_ranker(ranker_key), "attributes", ()))
    except LookupError:
        reads_attributes = False
    if not reads_attributes:
        return None
    if rng.random() < 0.01:
        return 0
    return round(n_items * rng.uniform(0.85, 1.0))


def reordered(original: Sequence[str], behaviour: Behaviour, rng: random.Random) -> list[str]:
    """Drop, jitter and insert: each kept item moves by noise proportional to the slate length."""
    kept = list(original)
    for _ in range(rng.randint(*behaviour.deleted)):
        if len(kept) > 1:
            kept.pop(rng.randrange(len(kept)))
    position = {item_id: index for index, item_id in enumerate(original)}
    spread = behaviour.shuffle * len(original)
    ranked = sorted(kept, key=lambda item_id: position[item_id] + rng.gauss(0, spread))
    for _ in range(rng.randint(*behaviour.added)):
        ranked.insert(rng.randrange(len(ranked) + 1), f"demo-news-{rng.getrandbits(48):012x}")
    return ranked
