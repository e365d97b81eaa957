"""The demo seeder gives the demo study its waves and completed baseline responses."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from participants.models import Participant
from surveys.models import Response, Wave

pytestmark = pytest.mark.django_db


def test_seed_demo_surveys_adds_three_waves_and_a_baseline_response_per_completed_baseline() -> None:
    call_command("seed_demo", stdout=StringIO())
    out = StringIO()

    call_command("seed_demo_surveys", stdout=out)
    call_command("seed_demo_surveys", stdout=out)

    assert sorted(Wave.objects.values_list("kind", flat=True)) == ["baseline", "endline", "midline"]
    done = Participant.objects.filter(baseline_completed_at__isnull=False, withdrawn_at__isnull=True)
    assert Response.objects.filter(completed_at__isnull=False).count() == done.count() > 0
    assert "already seeded" in out.getvalue()
    with_survey = Participant.objects.exclude(ranker_survey={}).count()
    assert with_survey == done.count()
