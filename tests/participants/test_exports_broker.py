"""An export requested on the page goes through the real Redis broker to a real Celery worker process, which
builds it; the download then works and every step is audited."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from participants.models import Arm, AuditEvent, DailyBehaviour, Export, Study
from participants.roles import PI
from rankers.management.commands.enroll_test_participant import create_test_participant
from tests.factories import ArmFactory, StudyFactory, login

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]  # the worker sees committed rows only


@pytest.fixture
def export_worker(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, settings: Any, tmp_path: Path
) -> str:
    """A worker on a private queue, writing exports where this test reads them; exports are sent to its queue."""
    export_dir = str(tmp_path / "exports")
    monkeypatch.setenv("PRC_EXPORT_DIR", export_dir)  # the worker process reads its settings from the environment
    settings.PRC_EXPORT_DIR = export_dir
    queue: str = request.getfixturevalue("celery_worker_queue")
    settings.PRC_EXPORT_QUEUE = queue
    return queue


def a_study_with_behaviour() -> Study:
    study = StudyFactory(timezone="UTC")
    ArmFactory(study=study, slug="control", ranker_key="control", is_control=True)
    person, _ = create_test_participant(arm=Arm.objects.get(study=study), is_test=False)
    DailyBehaviour.objects.create(participant=person, study_id=study.pk, day=person.created_at.date(),
                                  platform="reddit", active_minutes=17, views=40, engagements=2)  # fmt: skip
    return study


def test_a_real_worker_builds_the_export_requested_on_the_page_and_the_download_is_audited(export_worker: str) -> None:
    study = a_study_with_behaviour()
    pi = login("pi", PI)

    requested = pi.post("/research/exports/", {"study": study.slug, "datasets": ["daily_panel"], "format": "parquet"})

    assert requested.status_code == 302
    export = Export.objects.get()
    deadline = time.monotonic() + 60
    while export.status not in (Export.Status.DONE, Export.Status.FAILED) and time.monotonic() < deadline:
        time.sleep(0.2)  # another process builds it: nothing in this one can signal
        export.refresh_from_db()
    assert export.status == Export.Status.DONE, export.error
    status = pi.get(f"/research/exports/{export.pk}/status.json").json()
    assert status["status"] == "done"

    download = pi.get(f"/research/exports/{export.pk}/download/")

    assert download.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))  # type: ignore[attr-defined]
    rows = pq.read_table(io.BytesIO(archive.read("daily_panel.parquet"))).to_pylist()
    # S1's panel: the installed day on every platform, 0 where the extension reported nothing
    assert [(r["platform"], r["active_minutes"], r["views"]) for r in rows] == [
        ("facebook", 0, 0),
        ("reddit", 17, 40),
        ("twitter", 0, 0),
    ]
    assert "codebook.md" in archive.namelist()
    actions = list(
        AuditEvent.objects.filter(action__startswith="export.").order_by("pk").values_list("action", "actor")
    )
    assert [action for action, _ in actions] == ["export.requested", "export.completed", "export.downloaded"]
    assert actions[0][1] == actions[2][1] != ""  # the PI asked and downloaded
