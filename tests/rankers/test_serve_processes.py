"""``python -m prc_site.serve --workers 2``, the production entry point, as a real server on a real port."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import orjson
import pytest
from django.db import connection
from prometheus_client.multiprocess import MultiProcessCollector

from rankers.models import Slate
from tests.factories import ArmFactory, StudyFactory
from tests.rankers.conftest import _enrol, prc_request

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
METRICS_TOKEN = "serve-test-token"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def metrics_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def server(metrics_dir: Path) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_NAME": connection.settings_dict["NAME"],  # the test database
        "METRICS_TOKEN": METRICS_TOKEN,
        "PRC_SCORER_BACKEND": "baseline",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),  # where each worker process keeps its own counts
    }
    command = [sys.executable, "-m", "prc_site.serve", "--port", str(port), "--workers", "2"]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx2.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            assert process.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _requests_counted(text: str) -> float:
    match = re.search(r'^prc_rank_requests_total\{endpoint="rank",status="200"\} (\S+)$', text, re.MULTILINE)
    return float(match[1]) if match else 0.0


def _requests_counted_per_process(metrics_dir: Path) -> dict[str, float]:
    """Each worker's own count of answered /rank requests, from its file in the shared metrics folder."""
    counted = {}
    for path in metrics_dir.glob("counter_*.db"):
        samples = [
            sample
            for metric in MultiProcessCollector.merge([str(path)], accumulate=False)
            for sample in metric.samples
            if sample.name == "prc_rank_requests_total" and sample.labels == {"endpoint": "rank", "status": "200"}
        ]
        counted[path.stem.removeprefix("counter_")] = sum(sample.value for sample in samples)
    return counted


def test_two_worker_processes_answer_and_metrics_add_up_across_them(server: str, metrics_dir: Path) -> None:
    study = StudyFactory(rank_hold_ms=0)
    ArmFactory(study=study, slug="control", ranker_key="control", is_control=True)
    participant, token = _enrol(study, "control", True, {})
    sent = 24  # all to one process by chance: 2 in 2**24
    for _ in range(sent):  # a new connection each time: the kernel spreads them over both processes
        with httpx2.Client() as client:
            response = client.post(
                f"{server}/rank",
                content=orjson.dumps(prc_request(participant.public_id, n_posts=5)),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            assert response.status_code == 200

    scraped = []
    for _ in range(6):
        with httpx2.Client() as client:
            metrics = client.get(f"{server}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
            assert metrics.status_code == 200
            scraped.append(_requests_counted(metrics.text))

    per_process = _requests_counted_per_process(metrics_dir)
    assert len([count for count in per_process.values() if count > 0]) >= 2, per_process  # both answered
    assert sum(per_process.values()) == sent
    assert scraped == [sent] * 6  # whichever process answers, it reports both processes' requests
    assert Slate.objects.filter(participant_id=participant.public_id).count() == sent
