"""The recruitment funnel page (Table S15 of the paper), read through HTTP on a known cohort."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import Client
from pytest_django.asserts import assertContains

from participants.dashboard import FunnelRow
from participants.models import Arm, Assignment, Participant, RecruitmentSource, Study
from participants.roles import READER, create_roles
from tests.factories import ArmFactory, SourceFactory, StudyFactory

pytestmark = pytest.mark.django_db

URL = "/research/funnel/"
RANGE = {"start": "2025-03-01", "end": "2025-03-10"}
STAGE_FIELDS = ("screened_in_at", "consented_at", "enrolled_at", "included_at")


def at(day: int, hour: int = 12) -> dt.datetime:
    return dt.datetime(2025, 3, day, hour, tzinfo=dt.UTC)


class Cohort:
    """Builds participants who got ``reached`` stages past "started screening" (0 to 4)."""

    def __init__(self, study: Study) -> None:
        self.study = study
        self.arms = [
            ArmFactory(study=study, slug="control", name="Control", allocation_weight=2, is_control=True),
            ArmFactory(study=study, slug="treated", name="Treated"),
        ]
        self.positions = 0

    def add(
        self, source: RecruitmentSource | None, reached: int, *, created: dt.datetime, withdrawn: bool = False
    ) -> Participant:
        stamps = {field: created + dt.timedelta(hours=i + 1) for i, field in enumerate(STAGE_FIELDS[:reached])}
        participant = Participant.objects.create(
            study=self.study,
            source=source,
            vendor_pid=f"v{Participant.objects.count()}" if source else "",
            created_at=created,
            vendor_outcome=RecruitmentSource.Outcome.COMPLETE if reached >= 3 and source else "",
            withdrawn_at=created + dt.timedelta(days=2) if withdrawn else None,
            **stamps,
        )
        if reached >= 2:
            Assignment.objects.create(
                participant=participant, arm=self.arms[self.positions % 2], stratum="all", position=self.positions
            )
            self.positions += 1
        return participant

    def add_many(self, source: RecruitmentSource | None, reached_counts: list[int], day: int = 3) -> None:
        for reached, how_many in enumerate(reached_counts):
            for n in range(how_many):
                self.add(source, reached, created=at(day + n % 5))


@pytest.fixture
def study() -> Study:
    return StudyFactory(slug="known", name="Known study", timezone="UTC", status=Study.Status.RUNNING)


@pytest.fixture
def cohort(study: Study) -> Cohort:
    """Source A: 10 started, 6 screened in, 4 consented, 3 installed, 2 kept a week.
    Source B: 5, 2, 2, 2, 1. No source: 2, 1, 0, 0, 0. Plus people outside the range."""
    cohort = Cohort(study)
    vendor_a = SourceFactory(study=study, name="Vendor A", cost_per_complete=Decimal("3.00"))
    vendor_b = SourceFactory(study=study, name="Vendor B", cost_per_complete=Decimal("2.00"))
    # How many stop at each stage: [started only, screened in, consented, installed, included].
    cohort.add_many(vendor_a, [4, 2, 1, 1, 2])
    cohort.add_many(vendor_b, [3, 0, 0, 1, 1])
    cohort.add_many(None, [1, 1, 0, 0, 0])
    # Range edges are whole days: these two fall just outside it.
    cohort.add(vendor_a, 4, created=dt.datetime(2025, 2, 28, 23, 59, tzinfo=dt.UTC))
    cohort.add(vendor_b, 4, created=dt.datetime(2025, 3, 11, 0, 0, tzinfo=dt.UTC))
    return cohort


@pytest.fixture
def reader_client() -> Client:
    user = User.objects.create_user("reader", password="pw", is_staff=True)
    user.groups.add(create_roles()[READER])
    client = Client()
    client.force_login(user)
    return client


def rows_by_source(response: object) -> dict[str, FunnelRow]:
    return {row.source: row for row in response.context["funnel"]}  # type: ignore[attr-defined]


def test_funnel_counts_every_stage_per_source_for_the_cohort_in_range(cohort: Cohort, reader_client: Client) -> None:
    response = reader_client.get(URL, {**RANGE, "study": "known"})

    assert response.status_code == 200
    rows = rows_by_source(response)
    assert rows["Vendor A"].counts() == [10, 6, 4, 3, 2]
    assert rows["Vendor B"].counts() == [5, 2, 2, 2, 1]
    assert rows["Unknown"].counts() == [2, 1, 0, 0, 0]
    assert response.context["total"].counts() == [17, 9, 6, 5, 3]
    assert [row.source for row in response.context["funnel"]] == ["Vendor A", "Vendor B", "Unknown"]


def test_funnel_conversion_is_the_share_of_the_previous_stage(cohort: Cohort, reader_client: Client) -> None:
    response = reader_client.get(URL, {**RANGE, "study": "known"})

    rows = rows_by_source(response)
    assert rows["Vendor A"].conversions() == [60.0, 66.7, 75.0, 66.7]
    assert rows["Vendor B"].conversions() == [40.0, 100.0, 100.0, 50.0]
    assert rows["Unknown"].conversions() == [50.0, 0.0, None, None]
    assert response.context["total"].conversions() == [52.9, 66.7, 83.3, 60.0]


def test_funnel_cost_per_included_is_vendor_cost_of_completes_over_included(
    cohort: Cohort, reader_client: Client
) -> None:
    response = reader_client.get(URL, {**RANGE, "study": "known"})

    rows = rows_by_source(response)
    assert (rows["Vendor A"].cost, rows["Vendor A"].cost_per_included) == (Decimal("9.00"), Decimal("4.50"))
    assert (rows["Vendor B"].cost, rows["Vendor B"].cost_per_included) == (Decimal("4.00"), Decimal("4.00"))
    assert rows["Unknown"].cost_per_included is None
    total = response.context["total"]
    assert (total.cost, total.cost_per_included) == (Decimal("13.00"), Decimal("4.33"))


def test_funnel_table_shows_the_numbers_and_the_total_row(cohort: Cohort, reader_client: Client) -> None:
    html = reader_client.get(URL, {**RANGE, "study": "known"}).content.decode()

    total_row = html[html.index('<tr class="total"') :]
    total_row = total_row[: total_row.index("</tr>")]
    cells = [cell.split(">", 1)[1].split("<", 1)[0] for cell in total_row.split("<td")[1:]]
    assert cells == ["Total", "17", "53", "9", "67", "6", "83", "5", "60", "3", "13.00", "4.33"]


def test_funnel_page_has_the_shared_researcher_nav(study: Study, reader_client: Client) -> None:
    response = reader_client.get(URL, {**RANGE, "study": "known"})

    assertContains(response, '<a href="/research/funnel/" aria-current="page">Funnel</a>', html=True)
    assertContains(response, '<a href="/research/ranking/timelines/">Timelines</a>', html=True)
    assertContains(response, '<a href="/research/ranking/delivery/">Delivery</a>', html=True)
    assertContains(response, '<a href="/admin/">Admin</a>', html=True)


def test_consort_counts_per_arm_follow_the_cohort(cohort: Cohort, study: Study, reader_client: Client) -> None:
    control = cohort.arms[0]
    cohort.add(None, 3, created=at(4), withdrawn=True)  # randomized, installed, then withdrew

    response = reader_client.get(URL, {**RANGE, "study": "known"})

    consort = {
        row.slug: (row.assigned, row.installed, row.included, row.withdrawn) for row in response.context["consort"]
    }
    # Arms alternate in creation order; the two people outside the range are left out.
    assert consort == {control.slug: (4, 3, 1, 1), "treated": (3, 3, 2, 0)}
    assert Arm.objects.filter(study=study).count() == 2


def test_daily_enrolment_chart_is_drawn_with_local_plotly(cohort: Cohort, reader_client: Client) -> None:
    response = reader_client.get(URL, {**RANGE, "study": "known"})
    html = response.content.decode()

    assert 'id="enrolment-chart"' in html
    assert "Plotly.newPlot" in html
    assert "cdn" not in html.lower()
    script = html.split('<script src="', 1)[1].split('"', 1)[0]
    js = reader_client.get(script)
    assert js.status_code == 200
    assert js["Content-Type"].startswith("text/javascript")
    assert b"plotly" in b"".join(js.streaming_content)[:2000].lower()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"start": "2025-02-30", "end": "2025-03-10"}, "Enter a valid date."),
        ({"start": "yesterday", "end": "2025-03-10"}, "Enter a valid date."),
        ({"start": "2025-03-10", "end": "2025-03-01"}, "The start date must not be after the end date."),
        ({"start": "2020-01-01", "end": "2025-03-01"}, "Choose a range of at most"),
        ({"start": "2023-03-01", "end": "2025-03-01"}, "Choose a range of at most 731 days."),  # 732 days inclusive
        ({"study": "no-such-study"}, "Select a valid choice."),
    ],
)
def test_bad_filter_shows_a_form_error_not_a_server_error(
    cohort: Cohort, reader_client: Client, query: dict[str, str], message: str
) -> None:
    response = reader_client.get(URL, {**RANGE, "study": "known", **query})

    assert response.status_code == 400
    assert message in response.content.decode()
    assert 'id="funnel-table"' not in response.content.decode()


def test_funnel_defaults_to_the_last_thirty_days_of_the_latest_running_study(
    study: Study, reader_client: Client
) -> None:
    response = reader_client.get(URL)

    assert response.status_code == 200
    assert response.context["study"] == study
    form = response.context["form"]
    assert (form.cleaned_data["end"] - form.cleaned_data["start"]).days == 29
