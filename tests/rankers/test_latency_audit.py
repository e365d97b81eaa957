"""The equal-latency audit: pure pooling and flags, the delivery page, and ``manage.py latency_audit``."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from participants.models import Study
from participants.roles import READER
from rankers.latency_audit import AuditInput, latency_audit, percentile
from rankers.models import Slate
from rankers.rollups import rollup_day
from tests.factories import StudyFactory, paper_arms

# --- pure ------------------------------------------------------------------------------------------------------


def test_percentiles_are_read_off_the_histogram_by_nearest_rank() -> None:
    hist = {500: 50, 501: 45, 507: 5}
    assert percentile(hist, 0.5) == 500.5
    assert percentile(hist, 0.95) == 501.5
    assert percentile(hist, 0.96) == 507.5
    assert percentile({}, 0.5) is None


@given(st.dictionaries(st.integers(0, 5000), st.integers(1, 50), min_size=1), st.floats(0.01, 1))
def test_a_percentile_is_one_of_the_buckets_and_grows_with_the_fraction(hist: dict[int, int], fraction: float) -> None:
    value = percentile(hist, fraction)
    assert value is not None
    assert value - 0.5 in hist
    lower = percentile(hist, fraction / 2)
    assert lower is not None
    assert lower <= value


def _row(arm: str, platform: str, hist: dict[int, int], late: int = 0) -> AuditInput:
    return AuditInput(arm, platform, sum(hist.values()), late, {str(ms): n for ms, n in hist.items()})


def test_histograms_pool_exactly_across_days_and_platforms() -> None:
    rows = [
        _row("control", "reddit", {500: 3}),
        _row("control", "reddit", {504: 4}),  # another day
        _row("control", "twitter", {510: 10}),
    ]
    audit = latency_audit(rows, control_slug="control")
    cells = {(c.arm_slug, c.platform): c for c in audit.cells}
    assert cells[("control", "reddit")].p50_ms == 504.5
    assert cells[("control", "reddit")].slates == 7
    assert cells[("control", "")].p50_ms == 510.5  # 17 slates, the 9th is at 510
    first = audit.cells[0]
    assert (first.arm_slug, first.platform) == ("control", "")  # pooled first, control first


def test_an_arm_more_than_5_ms_from_control_is_flagged_and_named_as_the_largest_difference() -> None:
    rows = [
        _row("control", "reddit", {502: 100}),
        _row("bridging", "reddit", {507: 100}),  # +5 ms: within the limit
        _row("news", "reddit", {510: 100}),  # +8 ms
    ]
    audit = latency_audit(rows, control_slug="control")
    cells = {(c.arm_slug, c.platform): c for c in audit.cells}
    assert not cells[("bridging", "reddit")].flagged
    assert cells[("news", "reddit")].flags == ("p50 differs from control by +8 ms (limit ±5)",)
    assert audit.flagged
    worst = audit.largest_p50_diff
    assert worst is not None
    assert (worst.arm_slug, worst.p50_diff_ms) == ("news", 8.0)


def test_more_than_one_percent_late_answers_is_flagged_even_with_equal_medians() -> None:
    rows = [_row("control", "reddit", {502: 1000}), _row("news", "reddit", {502: 1000}, late=11)]
    audit = latency_audit(rows, control_slug="control")
    news = next(c for c in audit.cells if (c.arm_slug, c.platform) == ("news", "reddit"))
    assert news.p50_diff_ms == 0
    assert news.late_share == pytest.approx(0.011)
    assert news.flagged


def test_equal_arms_are_not_flagged() -> None:
    rows = [_row("control", "reddit", {502: 100}, late=1), _row("news", "reddit", {503: 100}, late=1)]
    assert not latency_audit(rows, control_slug="control").flagged


# --- from the slate log to the page and the command -------------------------------------------------------------

DAY = dt.date(2024, 10, 1)
RANGE = {"start": "2024-09-28", "end": "2024-10-05"}


def _log(study: Study, arm: str, served_ms: float, *, n: int = 1, phase: str = "assigned", **fields: Any) -> None:
    Slate.objects.bulk_create(
        Slate(
            study_id=study.id, served_at=dt.datetime.combine(DAY, dt.time(12), tzinfo=dt.UTC),
            participant_id="p_00000000000000aa", arm=arm, effective_arm=arm, ranker_key=arm, platform="reddit",
            content_type="post", original_ids=["a"], returned_ids=["a"], served_ms=served_ms, hold_ms=500.0,
            phase=phase, **fields,
        )
        for _ in range(n)
    )  # fmt: skip


@pytest.fixture
def slowed_study() -> Study:
    """Control and bridging answered at ~502 ms; Add News deliberately slowed to 530 ms, 3 of its 40 past 550 ms.
    Baseline slates of control, held less, are left out of the audit."""
    study = StudyFactory(status=Study.Status.RUNNING, timezone="UTC", slug="slowed")
    paper_arms(study)
    _log(study, "control", 502.0, n=40)
    _log(study, "control", 120.0, n=40, phase="baseline")
    _log(study, "uprank_bridging", 503.0, n=40)
    _log(study, "add_news", 530.0, n=37)
    _log(study, "add_news", 560.0, n=3)
    rollup_day(day=DAY)
    return study


@pytest.mark.django_db
def test_the_delivery_page_flags_a_deliberately_slowed_arm(client: Client, slowed_study: Study) -> None:
    user = User.objects.create_user("reader", password="pw-for-tests-only", is_staff=True)
    user.groups.add(Group.objects.get_or_create(name=READER)[0])
    client.force_login(user)

    response = client.get("/research/ranking/delivery/", {"study": slowed_study.slug, **RANGE})

    audit = response.context["audit"]
    cells = {(c.arm_slug, c.platform): c for c in audit.cells}
    assert cells[("control", "reddit")].p50_ms == 502.5  # the baseline slates are not in it
    assert cells[("control", "reddit")].slates == 40
    assert not cells[("uprank_bridging", "reddit")].flagged
    news = cells[("add_news", "reddit")]
    assert news.p50_diff_ms == 28.0
    assert news.late_share == pytest.approx(3 / 40)
    assert len(news.flags) == 2
    page = response.content.decode()
    assert '<tr data-arm="add_news" data-platform="reddit" class="bad">' in page
    assert "Largest p50 difference from control:\n  28.0 ms (add_news, reddit)" in page


@pytest.mark.django_db
def test_the_command_prints_the_audit_and_fails_when_an_arm_is_flagged(slowed_study: Study) -> None:
    out = io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("latency_audit", "--study", "slowed", "--start", "2024-10-01", "--end", "2024-10-01", stdout=out)

    assert failed.value.returncode == 1
    text = out.getvalue()
    add_news = next(line for line in text.splitlines() if line.startswith("reddit") and "add_news" in line)
    assert add_news.split()[2:7] == ["40", "530.5", "560.5", "28.0", "7.50%"]
    assert "Largest p50 difference from control: 28.0 ms (add_news, reddit)." in text
    assert "FLAGGED" in text


@pytest.mark.django_db
def test_the_command_passes_when_arms_are_equal() -> None:
    study = StudyFactory(status=Study.Status.RUNNING, timezone="UTC", slug="equal")
    paper_arms(study)
    _log(study, "control", 502.0, n=10)
    _log(study, "uprank_bridging", 504.0, n=10)
    rollup_day(day=DAY)
    out = io.StringIO()

    call_command("latency_audit", "--study", "equal", stdout=out)  # from the first rolled-up day to today

    assert "2024-10-01 to " in out.getvalue()
    assert "No arm's latency differs from control's beyond the limits." in out.getvalue()
