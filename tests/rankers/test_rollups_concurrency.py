"""Rollups under real concurrency: two runs of one day at once, and the task through the broker and a worker."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.db import connection

from participants.models import Study
from rankers import tasks
from rankers.models import Slate
from rankers.models_rollups import DailyArmRollup
from rankers.rollups import rollup_study_day
from tests.factories import StudyFactory

DAY = dt.date(2024, 10, 1)


def log_day(study: Study, slates: int = 20) -> None:
    for n in range(slates):
        Slate.objects.create(
            study_id=study.id,
            served_at=dt.datetime.combine(DAY, dt.time(12, n), tzinfo=dt.UTC),
            participant_id="p_race000000000001",
            arm="uprank_bridging",
            effective_arm=["uprank_bridging", "control"][n % 2],
            ranker_key="uprank_bridging",
            platform=["twitter", "reddit"][n % 3 % 2],
            content_type="post",
            served_ms=500.0 + n,
            ranker_ms=10.0 + n,
            intervention_on=True,
            nrc=n / 100,
        )


@pytest.mark.django_db(transaction=True)
def test_two_runs_of_the_same_day_at_once_both_succeed_and_leave_one_set_of_rows() -> None:
    study = StudyFactory(timezone="UTC")
    log_day(study)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            rollup_study_day(study_id=study.id, day=DAY)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    rows = DailyArmRollup.objects.filter(study=study)
    assert rows.count() == 4  # 2 arms x 2 platforms
    assert sum(rows.values_list("slates", flat=True)) == 20


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_the_rollup_task_runs_on_a_real_worker_through_the_broker(celery_worker_queue: str) -> None:
    study = StudyFactory(timezone="UTC")
    log_day(study, slates=6)
    tasks.rollup_day.apply_async(args=[DAY.isoformat()], kwargs={"study_ids": [study.id]}, queue=celery_worker_queue)
    deadline = time.monotonic() + 30
    while not DailyArmRollup.objects.filter(study=study).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sum(DailyArmRollup.objects.filter(study=study).values_list("slates", flat=True)) == 6
