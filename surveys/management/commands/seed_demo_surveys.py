"""Give the demo study its survey waves and baseline answers (run after ``seed_demo``).

Loads the instrument library, creates the baseline wave (at signup, open 30 days, for participants
with the extension installed), a midline and an endline with fixed windows and a $5 payment each,
and, for every demo participant whose baseline is done, a completed baseline response with made-up
answers, recorded through ``surveys.services.complete_invitation`` (the path a real completion takes:
indexes, the answers rankers read, inclusion). Idempotent: does nothing once the demo has waves.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from participants.management.commands.seed_demo import STUDY_SLUG
from participants.models import Participant, Study
from surveys import services
from surveys.models import Instrument, Invitation, Question, Wave


def made_up_answer(question: Question, rng: random.Random) -> Any:
    """A plausible answer of the question's kind (a choice, a number in range, or one per row)."""
    if question.kind == Question.Kind.TEXT:
        return ""
    if question.items:
        return {item["key"]: _one(question, rng) for item in question.items}
    return _one(question, rng)


def _one(question: Question, rng: random.Random) -> Any:
    if question.options:
        return rng.choice(question.options)["value"]
    low, high = question.min_value or 0, question.max_value if question.max_value is not None else 100
    return rng.randint(low, high)


class Command(BaseCommand):
    help = "Create the demo study's survey waves and completed baseline responses."

    def handle(self, *args: Any, **options: Any) -> None:
        study = Study.objects.filter(slug=STUDY_SLUG).first()
        if study is None:
            raise CommandError("Run seed_demo first.")
        if study.waves.exists():
            self.stdout.write("demo surveys already seeded")
            return
        call_command("load_instruments", stdout=self.stdout)
        now = timezone.now()
        instruments = {i.slug: i for i in Instrument.objects.all()}
        baseline = Wave.objects.create(
            study=study,
            slug="baseline",
            name="Baseline survey",
            kind=Wave.Kind.BASELINE,
            instrument=instruments["prc-baseline"],
            opens_after_days=0,
            open_days=30,
            target=Wave.Target.INSTALLED,
        )
        for slug, starts, days in (("midline", 30, 7), ("endline", 90, 10)):
            Wave.objects.create(
                study=study,
                slug=slug,
                name=f"{slug.title()} survey",
                kind=slug,
                instrument=instruments[f"prc-{slug}"],
                opens_at=now + dt.timedelta(days=starts),
                closes_at=now + dt.timedelta(days=starts + days),
                target=Wave.Target.INCLUDED,
                payment_amount=Decimal("5.00"),
            )
        count = self._answer_baselines(study, baseline, random.Random(7))
        self.stdout.write(f"demo surveys: 3 waves, {count} baseline responses")

    def _answer_baselines(self, study: Study, wave: Wave, rng: random.Random) -> int:
        questions = list(wave.instrument.questions.all())
        done = Participant.objects.filter(
            study=study, baseline_completed_at__isnull=False, consented_at__isnull=False, withdrawn_at__isnull=True
        )
        count = 0
        for participant in done.iterator():
            assert participant.consented_at is not None
            assert participant.baseline_completed_at is not None
            opens, closes = wave.window_for(participant.consented_at)
            at = participant.baseline_completed_at
            invitation = Invitation.objects.create(
                participant=participant, wave=wave, opens_at=opens, closes_at=closes, invited_at=opens, created_at=opens
            )
            answers = {q.key: made_up_answer(q, rng) for q in questions if q.kind != Question.Kind.TEXT}
            answers.pop("party_leaner" if answers["party_id"] in ("republican", "democrat") else "party_strong")
            services.complete_invitation(invitation=invitation, at=at, answers=answers)
            count += 1
        return count
