"""The screener's interest question states what taking part commits people to, from the study's settings."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from participants.forms import interest_question
from participants.models import RecruitmentSource, Study
from tests.participants.conftest import join

pytestmark = pytest.mark.django_db


def test_the_interest_question_states_payments_lottery_length_and_who_runs_it(
    client: Client, study: Study, source: RecruitmentSource
) -> None:
    Study.objects.filter(pk=study.pk).update(run_by="researchers at UC Berkeley")
    assert join(client, source, "reader-1").status_code == 302

    page = client.get("/signup/screener/").content.decode()

    assert (
        "You will be paid a total of $10 for your participation in this study, plus a chance to win $500, if you "
        "keep the extension installed for 5 months. This is a study run by researchers at UC Berkeley"
    ) in page
    assert "You will be paid $5 for each of 2 surveys over several months." in page


def test_the_question_follows_the_studys_own_amounts(client: Client, study: Study, source: RecruitmentSource) -> None:
    Study.objects.filter(pk=study.pk).update(
        survey_payment=Decimal("7.50"), paid_surveys=3, lottery_prize=0, commitment_months=1, run_by="the Lab"
    )
    assert join(client, source, "reader-2").status_code == 302

    page = client.get("/signup/screener/").content.decode()

    assert (
        "paid a total of $22.50 for your participation in this study if you keep the extension installed for 1 month"
        in page
    )
    assert "chance to win" not in page
    assert "run by the Lab" in page
    assert "You will be paid $7.50 for each of 3 surveys" in page


@given(
    st.decimals(min_value=0, max_value=1000, places=2),
    st.integers(0, 10),
    st.decimals(min_value=0, max_value=10000, places=2),
    st.integers(1, 24),
)
def test_the_question_always_names_the_total_the_lottery_and_the_length(
    payment: Decimal, surveys: int, prize: Decimal, months: int
) -> None:
    study = Study(survey_payment=payment, paid_surveys=surveys, lottery_prize=prize, commitment_months=months)

    text = interest_question(study)

    total = payment * surveys
    assert (f"${total:,.0f}" if total == total.to_integral_value() else f"${total:,.2f}") in text
    assert ("chance to win" in text) == (prize > 0)
    assert f"installed for {months} month" in text
    assert text.endswith("Are you interested in participating?")
