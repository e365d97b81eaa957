"""One-click exports: every table as Parquet or CSV with a codebook, de-identified by default, audited, refused
to a role without the right; read back with pyarrow and with the DuckDB query the codebook gives."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import json
import re
import zipfile
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from participants import exports, prereg
from participants.models import AuditEvent, DailyBehaviour, Export, Participant, Payment, Study
from participants.roles import PI, READER
from rankers.models import Slate
from surveys.models import Wave
from tests.factories import login
from tests.surveys.conftest import make_wave, run_schedule
from tests.surveys.test_dashboard_and_export import complete, people

pytestmark = pytest.mark.django_db

EVERY_TABLE = [
    "participants",
    "assignments",
    "daily_panel",
    "payments",
    "slates",
    "slate_items",
    "survey_responses",
    "in_feed_answers",
]


@pytest.fixture(autouse=True)
def _export_dir(settings: Any, tmp_path: Path) -> None:
    settings.PRC_EXPORT_DIR = str(tmp_path / "exports")


@pytest.fixture
def study(study: Study) -> Study:
    """The participants' study, with the survey library loaded."""
    call_command("load_instruments", stdout=StringIO())
    return study


@pytest.fixture
def study_with_data(study: Study) -> Study:
    """Two control and one bridging participant with a survey, daily behaviour, a payment and a slate."""
    control, bridging = people(study, "control", 2), people(study, "uprank_bridging", 1)
    Participant.objects.filter(pk=control[0].pk).update(vendor_pid="VENDOR-SECRET-1", email="hidden@example.org")
    baseline = make_wave(study, "baseline", target=Wave.Target.CONSENTED, open_days=None)
    run_schedule()
    for n, person in enumerate(control + bridging):
        complete(person, baseline, ft_in=50 + 10 * n)
    day = dt.date(2026, 3, 2)
    for n, person in enumerate(control + bridging):
        DailyBehaviour.objects.create(
            participant=person,
            study_id=study.pk,
            day=day,
            platform="reddit",
            active_minutes=10 + n,
            views=20,
            engagements=n,
        )
    Payment.objects.create(
        participant=bridging[0], amount="5.00", kind="survey", reason="Baseline survey", idempotency_key="pay-1"
    )
    Slate.objects.create(
        study_id=study.pk,
        participant_id=bridging[0].public_id,
        arm="uprank_bridging",
        effective_arm="uprank_bridging",
        ranker_key="uprank_bridging",
        platform="reddit",
        content_type="post",
        served_ms=500.0,
        original_ids=["a", "b", "c"],
        returned_ids=["c", "a", "x"],
        added_ids=["x"],
        deleted_ids=["b"],
        n_items=3,
        n_added=1,
        n_deleted=1,
        intervention_on=True,
    )
    return study


def export_through_the_page(
    client: Client, study: Study, capture: Callable[..., Any], **form: Any
) -> tuple[Export, zipfile.ZipFile]:
    body = {"study": study.slug, "datasets": EVERY_TABLE, "format": "parquet", **form}
    with capture(execute=True):
        response = client.post("/research/exports/", body)
    assert response.status_code == 302, response.content.decode()[:2000]
    export = Export.objects.get()
    assert response["Location"] == f"/research/exports/{export.pk}/"
    assert export.status == Export.Status.DONE, export.error
    download = client.get(f"/research/exports/{export.pk}/download/")
    assert download.status_code == 200
    return export, zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))  # type: ignore[attr-defined]


def parquet(archive: zipfile.ZipFile, name: str) -> list[dict[str, Any]]:
    return pq.read_table(io.BytesIO(archive.read(f"{name}.parquet"))).to_pylist()  # type: ignore[no-any-return]


def test_a_pi_exports_every_table_as_parquet_with_a_codebook_in_one_click(
    study_with_data: Study, django_capture_on_commit_callbacks: Any
) -> None:
    client = login("pi", PI)
    export, archive = export_through_the_page(client, study_with_data, django_capture_on_commit_callbacks)

    assert sorted(archive.namelist()) == sorted(
        [f"{name}.parquet" for name in EVERY_TABLE] + ["codebook.json", "codebook.md"]
    )
    assert (export.datasets_done, export.rows_done) == (8, 3 + 3 + 3 + 1 + 1 + 4 + 3 + 0)
    arms = {row["participant"]: row["arm"] for row in parquet(archive, "assignments")}
    assert sorted(arms.values()) == ["control", "control", "uprank_bridging"]
    panel = parquet(archive, "daily_panel")
    assert sorted(row["active_minutes"] for row in panel) == [10, 11, 12]
    assert {row["day"] for row in panel} == {dt.date(2026, 3, 2)}
    assert {row["arm"] for row in panel} == set(arms.values())
    assert [str(row["amount"]) for row in parquet(archive, "payments")] == ["5.00"]
    responses = parquet(archive, "survey_responses")
    assert sorted(row["ft_in"] for row in responses) == [50.0, 60.0, 70.0]
    assert all(isinstance(row["index.affective_polarization"], float) for row in responses), responses[0].keys()
    codebook = json.loads(archive.read("codebook.json"))
    columns = {t["name"]: {c["name"]: c for c in t["columns"]} for t in codebook["datasets"]}
    assert columns["survey_responses"]["ft_in"]["type"] == "float"
    assert "how you feel toward [inparty_adj] voters" in columns["survey_responses"]["ft_in"]["question"]
    assert columns["daily_panel"]["active_minutes"]["type"] == "int"
    markdown = archive.read("codebook.md").decode()
    assert "| `active_minutes` | BIGINT |" in markdown
    assert "none is locked for this study yet" in markdown
    assert "duckdb" in markdown.lower()
    assert "polars" in markdown.lower()
    actions = list(
        AuditEvent.objects.filter(action__startswith="export.").order_by("id").values_list("action", "detail")
    )
    assert [action for action, _ in actions] == ["export.requested", "export.completed", "export.downloaded"]
    assert actions[0][1]["identifiable"] is False
    assert actions[0][1]["datasets"] == EVERY_TABLE


def test_slate_items_give_each_item_s_place_before_and_after_the_ranker(
    study_with_data: Study, django_capture_on_commit_callbacks: Any
) -> None:
    _, archive = export_through_the_page(
        login("pi", PI), study_with_data, django_capture_on_commit_callbacks, datasets=["slates", "slate_items"]
    )
    items = [
        (r["item_id"], r["original_rank"], r["returned_rank"], r["added"], r["deleted"])
        for r in parquet(archive, "slate_items")
    ]
    assert items == [
        ("c", 3, 1, False, False),
        ("a", 1, 2, False, False),
        ("x", None, 3, True, False),
        ("b", 2, None, False, True),
    ]
    (slate,) = parquet(archive, "slates")
    assert (slate["n_added"], slate["n_deleted"], slate["effective_arm"]) == (1, 1, "uprank_bridging")
    assert {row["slate"] for row in parquet(archive, "slate_items")} == {slate["slate"]}


def test_exports_are_de_identified_by_default(study_with_data: Study, django_capture_on_commit_callbacks: Any) -> None:
    _, archive = export_through_the_page(
        login("pi", PI), study_with_data, django_capture_on_commit_callbacks, format="csv"
    )
    everything = b"".join(archive.read(name) for name in archive.namelist()).decode()
    assert "VENDOR-SECRET-1" not in everything
    assert "hidden@example.org" not in everything
    header = next(csv.reader(io.StringIO(archive.read("participants.csv").decode())))
    assert "vendor_pid" not in header
    assert "participant" in header


def test_an_identifiable_export_holds_vendor_ids_but_never_email_and_says_so_in_the_audit(
    study_with_data: Study, django_capture_on_commit_callbacks: Any
) -> None:
    _export, archive = export_through_the_page(
        login("pi", PI),
        study_with_data,
        django_capture_on_commit_callbacks,
        identifiable="on",
        datasets=["participants"],
    )
    assert "VENDOR-SECRET-1" in {row["vendor_pid"] for row in parquet(archive, "participants")}
    assert b"hidden@example.org" not in archive.read("participants.parquet")
    assert "**identifiable**" in archive.read("codebook.md").decode()
    audit = AuditEvent.objects.get(action="export.requested")
    assert audit.detail["identifiable"] is True
    assert audit.actor_label == "pi"


def test_the_csv_export_reads_in_duckdb_with_the_codebook_s_query(
    study_with_data: Study, django_capture_on_commit_callbacks: Any, tmp_path: Path
) -> None:
    _, archive = export_through_the_page(
        login("pi", PI), study_with_data, django_capture_on_commit_callbacks, format="csv"
    )
    archive.extractall(tmp_path)
    query = re.search(r"-- duckdb\n(.*?);", archive.read("codebook.md").decode(), re.S)
    assert query is not None
    with duckdb.connect() as db:
        db.execute(f"SET file_search_path = '{tmp_path}'")
        rows = db.execute(query.group(1)).fetchall()
    assert rows == [("Control", "reddit", 10.5), ("Uprank Bridging", "reddit", 12.0)]


def test_a_role_without_the_export_right_is_refused_and_the_refusal_is_audited(study_with_data: Study) -> None:
    reader = login("reader", READER)
    page = reader.get("/research/exports/")
    assert page.status_code == 200
    assert 'data-testid="no-export-right"' in page.content.decode()
    response = reader.post(
        "/research/exports/", {"study": study_with_data.slug, "datasets": ["participants"], "format": "csv"}
    )
    assert response.status_code == 403
    assert not Export.objects.exists()
    refusal = AuditEvent.objects.get(action="export.refused")
    assert refusal.actor_label == "reader"
    assert refusal.detail["datasets"] == ["participants"]


def test_a_reader_cannot_download_an_export_a_pi_made(
    study_with_data: Study, django_capture_on_commit_callbacks: Any
) -> None:
    export, _ = export_through_the_page(
        login("pi", PI), study_with_data, django_capture_on_commit_callbacks, datasets=["assignments"]
    )
    assert login("reader", READER).get(f"/research/exports/{export.pk}/download/").status_code == 403
    assert AuditEvent.objects.filter(action="export.download_refused", actor_label="reader").count() == 1


def test_a_bad_export_form_is_answered_with_its_errors_and_nothing_is_queued(study_with_data: Study) -> None:
    response = login("pi", PI).post("/research/exports/", {"study": "nope", "datasets": ["bogus"], "format": "xls"})
    assert response.status_code == 400
    form = response.context["form"]
    assert set(form.errors) == {"study", "datasets", "format"}
    assert not Export.objects.exists()


def test_the_progress_page_and_its_status_say_how_far_an_export_has_got(study_with_data: Study) -> None:
    pi = login("pi", PI)
    export = Export.objects.create(
        study=study_with_data,
        datasets=["participants", "slates"],
        format="csv",
        status=Export.Status.RUNNING,
        dataset="slates",
        datasets_done=1,
        rows_done=3,
    )
    assert 'max="2" value="1"' in pi.get(f"/research/exports/{export.pk}/").content.decode()
    status = pi.get(f"/research/exports/{export.pk}/status.json").json()
    assert (status["status"], status["dataset"], status["rows_done"], status["download"]) == (
        "running",
        "slates",
        3,
        None,
    )


def test_building_an_export_twice_builds_it_once(study_with_data: Study) -> None:
    export = Export.objects.create(study=study_with_data, datasets=["assignments"], format="csv")
    assert exports.build_export(export.pk) is True
    assert exports.build_export(export.pk) is False
    assert AuditEvent.objects.filter(action="export.completed").count() == 1


def test_an_empty_slate_log_exports_as_empty_tables_with_their_columns(study: Study) -> None:
    export = Export.objects.create(study=study, datasets=["slates", "slate_items"], format="parquet")
    assert exports.build_export(export.pk) is True
    export.refresh_from_db()
    with zipfile.ZipFile(exports.export_path(export)) as archive:
        table = pq.read_table(io.BytesIO(archive.read("slate_items.parquet")))
    assert table.num_rows == 0
    assert table.column_names[:3] == ["slate", "served_at", "participant"]


def test_test_participants_are_left_out_of_every_table(study: Study) -> None:
    tester = people(study, "control", 1)[0]
    Participant.objects.filter(pk=tester.pk).update(is_test=True)
    DailyBehaviour.objects.create(participant=tester, study_id=study.pk, day=timezone.localdate(), platform="reddit")
    export = Export.objects.create(study=study, datasets=["participants", "assignments", "daily_panel"], format="csv")
    exports.build_export(export.pk)
    assert Export.objects.get().rows_done == 0


def test_a_frozen_pre_registration_goes_into_the_export_with_its_hash_and_deviations(study: Study) -> None:
    pi = User.objects.create_user("prereg-pi", is_staff=True)
    pi.groups.add(Group.objects.get(name=PI))
    plan = prereg.freeze_plan(study=study, by=pi, text="Primary: affective polarization.",
                              primary_outcomes=["affective_polarization"])  # fmt: skip
    export = Export.objects.create(study=study, datasets=["assignments"], format="csv")
    exports.build_export(export.pk)
    export.refresh_from_db()
    with zipfile.ZipFile(exports.export_path(export)) as archive:
        frozen = json.loads(archive.read("preregistration.json"))
        codebook = archive.read("codebook.md").decode()
    assert frozen["frozen_hash"] == plan.frozen_hash
    assert frozen["frozen"]["primary_outcomes"] == ["affective_polarization"]
    assert "Pre-registration: `preregistration.json`" in codebook


def test_the_exported_daily_panel_is_s1s_with_every_installed_day_at_zero_where_nothing_was_reported(
    study: Study,
) -> None:
    stays, leaves, not_followed = people(study, "control", 3)
    installed = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    Participant.objects.filter(pk__in=[stays.pk, leaves.pk, not_followed.pk]).update(enrolled_at=installed)
    Participant.objects.filter(pk=not_followed.pk).update(included_at=None)  # S1 does not follow them
    Participant.objects.filter(pk=leaves.pk).update(withdrawn_at=dt.datetime(2026, 3, 3, 9, tzinfo=dt.UTC))
    report = functools.partial(DailyBehaviour.objects.create, study_id=study.pk, views=4, engagements=1)
    report(participant=stays, day=dt.date(2026, 3, 1), platform="reddit", active_minutes=7)
    report(participant=stays, day=dt.date(2026, 3, 4), platform="facebook", active_minutes=9)  # the last day
    report(participant=not_followed, day=dt.date(2026, 3, 2), platform="twitter", active_minutes=5)
    export = Export.objects.create(study=study, datasets=["daily_panel"], format="csv")

    exports.build_export(export.pk)

    export.refresh_from_db()
    with zipfile.ZipFile(exports.export_path(export)) as archive:
        rows = list(csv.DictReader(io.StringIO(archive.read("daily_panel.csv").decode())))
    minutes = {
        (row["participant"], row["day"], row["platform"]): (int(row["active_minutes"]),
                                                            int(row["days_since_enrolment"]))
        for row in rows
    }  # fmt: skip
    days = [f"2026-03-0{n}" for n in (1, 2, 3, 4)]
    platforms = ("facebook", "reddit", "twitter")
    expected = {(str(stays.public_id), day, p): (0, n) for n, day in enumerate(days) for p in platforms}
    expected[str(stays.public_id), "2026-03-01", "reddit"] = (7, 0)
    expected[str(stays.public_id), "2026-03-04", "facebook"] = (9, 3)
    # withdrew on the 3rd: followed on the 1st and 2nd, every platform 0
    expected |= {(str(leaves.public_id), day, p): (0, n) for n, day in enumerate(days[:2]) for p in platforms}
    expected[str(not_followed.public_id), "2026-03-02", "twitter"] = (5, 1)
    assert minutes == expected
    assert len(rows) == len(expected) == export.rows_done
