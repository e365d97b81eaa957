"""The demo's slate log: ``seed_demo_slates`` after ``seed_demo``, as ``run_platform --seed-demo`` runs them."""

from __future__ import annotations

import io
import time

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from participants.models import Participant, Study
from rankers.models import ContentItem, DailyArmRollup, Slate

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo() -> Study:
    call_command("seed_demo", stdout=io.StringIO())
    began = time.monotonic()
    call_command("seed_demo_slates", stdout=io.StringIO())
    assert time.monotonic() - began < 10
    return Study.objects.get(slug="prc-demo")


def rollup_totals(study: Study, arm: str) -> dict[str, float]:
    rows = DailyArmRollup.objects.filter(study=study, arm_slug=arm)
    totals = rows.aggregate(slates=Sum("slates"), added=Sum("added_total"), deleted=Sum("deleted_total"))
    weighted = sum((row.nrc_mean or 0) * row.nrc_slates for row in rows)
    nrc_slates = sum(row.nrc_slates for row in rows)
    return {**totals, "nrc": weighted / nrc_slates if nrc_slates else 0.0}


def test_demo_slates_belong_to_enrolled_participants_and_their_arms(demo: Study) -> None:
    enrolled = dict(
        Participant.objects.filter(study=demo, enrolled_at__isnull=False).values_list(
            "public_id", "assignment__arm__slug"
        )
    )
    slates = Slate.objects.filter(study_id=demo.pk)
    assert slates.count() > 500
    for participant_id, arm, effective_arm in slates.values_list("participant_id", "arm", "effective_arm"):
        assert enrolled[participant_id] == arm
        assert effective_arm in (arm, "control")
    assert ContentItem.objects.filter(item_id__startswith="demo-").exists()


def test_demo_rollups_show_what_each_arm_does(demo: Study) -> None:
    arms = set(DailyArmRollup.objects.filter(study=demo).values_list("arm_slug", flat=True))
    assert {"control", "uprank_bridging", "bridging_downrank_toxic", "add_news"} <= arms
    assert len(arms) >= 5

    control = rollup_totals(demo, "control")
    assert (control["nrc"], control["added"], control["deleted"]) == (0.0, 0, 0)
    bridging = rollup_totals(demo, "uprank_bridging")
    assert 0.02 < bridging["nrc"] < 0.5
    assert bridging["added"] == 0
    assert rollup_totals(demo, "add_news")["added"] > 0
    fallbacks = [row.fallbacks for row in DailyArmRollup.objects.filter(study=demo) if row.fallbacks]
    assert any("timeout" in reasons for reasons in fallbacks)
    assert not DailyArmRollup.objects.filter(study=demo, arm_slug="control").exclude(fallbacks={}).exists()


def test_seeding_the_demo_slates_twice_adds_nothing(demo: Study) -> None:
    slates, rollups = Slate.objects.count(), DailyArmRollup.objects.count()
    out = io.StringIO()
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo_slates", stdout=out)
    assert "already has slates" in out.getvalue()
    assert (Slate.objects.count(), DailyArmRollup.objects.count()) == (slates, rollups)


def test_demo_slates_need_the_demo_study() -> None:
    with pytest.raises(CommandError, match="run seed_demo first"):
        call_command("seed_demo_slates")
