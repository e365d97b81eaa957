"""Regenerate every stratum's allocation sequence from the seed and check each stored assignment."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from participants.models import Assignment, StratumCounter, Study
from participants.randomization import TEST_PREFIX, allocation_sequence
from participants.services import study_weights


class Command(BaseCommand):
    help = "Check that every assignment of a study matches the allocation sequence regenerated from its seed."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("study_slug")

    def handle(self, *args: Any, study_slug: str, **options: Any) -> None:
        study = Study.objects.filter(slug=study_slug).first()
        if study is None:
            raise CommandError(f"no study with slug {study_slug!r}")
        self.stdout.write(f"seed hash {study.randomization_seed_hash}")
        weights = study_weights(study)
        problems: list[str] = []
        # Test participants have their own sequences and may be deleted: the audit covers the real ones.
        assignments = Assignment.objects.filter(participant__study=study, participant__is_test=False)
        assignments = assignments.select_related("arm", "participant")
        by_stratum: dict[str, list[Assignment]] = {}
        for assignment in assignments.order_by("stratum", "position"):
            by_stratum.setdefault(assignment.stratum, []).append(assignment)
        counters = dict(
            StratumCounter.objects.filter(study=study)
            .exclude(stratum__startswith=TEST_PREFIX)
            .values_list("stratum", "next_position")
        )
        for stratum in sorted(set(by_stratum) | set(counters)):
            problems += self._check_stratum(study, weights, stratum, by_stratum.get(stratum, []), counters.get(stratum))
        total = sum(len(rows) for rows in by_stratum.values())
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(f"{len(problems)} problem(s) in {total} assignments")
        self.stdout.write(f"OK: {total} assignments in {len(by_stratum)} strata match the regenerated sequence")

    def _check_stratum(
        self, study: Study, weights: list[tuple[str, int]], stratum: str, rows: list[Assignment], counter: int | None
    ) -> list[str]:
        sequence = allocation_sequence(study.randomization_seed, stratum, weights, len(rows))
        problems = []
        for expected_position, (assignment, expected_arm) in enumerate(zip(rows, sequence, strict=True)):
            who = assignment.participant.public_id
            if assignment.position != expected_position:
                problems.append(f"{stratum}: {who} holds position {assignment.position}, expected {expected_position}")
            elif assignment.arm.slug != expected_arm:
                problems.append(
                    f"{stratum}#{assignment.position}: {who} in {assignment.arm.slug}, sequence says {expected_arm}"
                )
        if counter is not None and counter != len(rows):
            problems.append(f"{stratum}: counter at {counter} but {len(rows)} assignments")
        self.stdout.write(f"{stratum}: {len(rows)} assignments checked")
        return problems
