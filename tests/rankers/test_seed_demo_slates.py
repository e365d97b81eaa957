"""The demo's slate log: ``seed_demo_slates`` after ``seed_demo``, as ``run_platform --seed-demo`` runs them."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from participants.models import Participant, Study
from rankers.dashboard import delivery_rows, latency_audit
from rankers.models import ContentItem, DailyArmRollup, Slate

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo() -> Study:
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo_slates", stdout=io.StringIO())
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


def test_after_baseline_every_demo_arm_is_served_at_the_same_time(demo: Study) -> None:
    """The seeder holds each slate as ``/rank`` would (``serving.hold_ms``): the ramp ends with the baseline."""
    audit = latency_audit(demo, start=dt.date(2000, 1, 1), end=dt.date(2100, 1, 1))
    assert audit is not None
    pooled = {cell.arm_slug: cell for cell in audit.cells if cell.platform == ""}
    assert {"control", "uprank_bridging", "add_news"} <= set(pooled)
    for cell in pooled.values():
        assert cell.p50_ms is not None
        assert demo.rank_hold_ms <= cell.p50_ms <= demo.rank_hold_ms + 12
        assert cell.late_share == 0
    assert not audit.flagged, [cell.flags for cell in audit.cells if cell.flags]
    served = [row.served_p50_ms for row in delivery_rows(demo, start=dt.date(2000, 1, 1), end=dt.date(2100, 1, 1))]
    assert None not in served
    assert max(served) - min(served) <= 5  # the delivery table says the same
    baseline = Slate.objects.filter(study_id=demo.pk, phase="baseline")
    assert baseline.exists()
    assert not baseline.filter(hold_ms__gt=demo.rank_hold_ms).exists()


def test_demo_bridging_slates_log_their_dose_and_unscored_ones_fall_back(demo: Study) -> None:
    bridging = Slate.objects.filter(study_id=demo.pk, ranker_key="uprank_bridging")
    assert not bridging.filter(n_scored__isnull=True).exists()
    assert not bridging.filter(n_scored=0, intervention_on=True).exists()
    assert not Slate.objects.filter(study_id=demo.pk, ranker_key="control", n_scored__isnull=False).exists()


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
