"""Researchers configure waves in the admin; instruments and what participants wrote are read-only."""

from __future__ import annotations

import pytest

from participants.models import Study
from participants.roles import PI
from surveys.models import Instrument, Wave
from tests.factories import login

pytestmark = pytest.mark.django_db


def test_a_pi_adds_a_midline_wave_with_a_fixed_window_in_the_admin(study: Study) -> None:
    pi = login("pi", PI)
    form = {
        "study": study.pk,
        "slug": "midline",
        "name": "Midline survey",
        "kind": "midline",
        "instrument": Instrument.objects.get(slug="prc-midline").pk,
        "target": "included",
        "active": "on",
        "payment_amount": "5.00",
        "opens_at_0": "2024-10-29",
        "opens_at_1": "00:00:00",
        "closes_at_0": "2024-11-05",
        "closes_at_1": "23:59:59",
        "max_reminders": "3",
        "reminder_interval_days": "2",
        "mode": "internal",
    }

    response = pi.post("/admin/surveys/wave/add/", form)

    assert response.status_code == 302, response.content.decode()[:2000]
    wave = Wave.objects.get(slug="midline")
    assert (wave.target, wave.max_reminders, str(wave.payment_amount)) == ("included", 3, "5.00")


def test_invitations_responses_and_instruments_cannot_be_edited_from_the_admin(study: Study) -> None:
    pi = login("pi", PI)

    assert pi.get("/admin/surveys/invitation/add/").status_code == 403
    assert pi.get("/admin/surveys/response/add/").status_code == 403
    assert pi.get("/admin/surveys/instrument/add/").status_code == 403
    assert pi.get("/admin/surveys/instrument/").status_code == 200
