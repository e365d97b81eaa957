"""A slate answered before its participant could be looked up (a swamped, paused or unreachable database) still
reaches the log: as the participant's, with the arm and phase the serving rule gives, as an untreated fallback."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import redis
from django.test import AsyncClient
from django.utils import timezone

from participants.models import Arm, ExtensionInstall, Participant
from rankers import checks, serving, slatelog
from rankers.management.commands.enroll_test_participant import create_test_participant
from rankers.models import Slate
from rankers.validation import parse_request
from tests.factories import ArmFactory, StudyFactory
from tests.rankers.conftest import post_rank, prc_request, valid_response

pytestmark = pytest.mark.django_db(transaction=True)

DEFAULT_HOLD_MS = 20


@pytest.fixture
def fallback_key(settings: Any) -> Iterator[str]:
    settings.RANK_FALLBACK_KEY = key = f"test:slate_fallback:{uuid.uuid4().hex}"
    yield key
    redis.Redis.from_url(slatelog.redis_url()).delete(key, key + ":processing", key + ":failed", key + ":lock")


@pytest.fixture
def lookups_time_out(settings: Any) -> None:
    """Every lookup made for a request gives up at once, as under a burst that swamps the event loop."""
    settings.RANK_DB_LOOKUP_TIMEOUT_S = 0.0
    settings.RANK_DEFAULT_HOLD_MS = DEFAULT_HOLD_MS
    # The late lookup and the write get a margin no loaded machine reaches (a process's first connection included).
    settings.RANK_WRITE_TIMEOUT_S = 60.0


async def _late_writes() -> None:
    """Wait for the writes started after the answer (one that has already ended is no longer listed)."""
    if slatelog._writes:
        await asyncio.wait(set(slatelog._writes), timeout=60)


def _fallback(key: str) -> list[dict[str, Any]]:
    return [orjson.loads(raw) for raw in redis.Redis.from_url(slatelog.redis_url()).lrange(key, 0, -1)]


def _token_hash(participant: Participant) -> str:
    return ExtensionInstall.objects.get(participant=participant).token_hash


def _record(participant: Participant, served_at: dt.datetime | None = None) -> slatelog.SlateRecord:
    body = prc_request(participant.public_id, n_posts=3)
    return serving.unattributed_record(
        parse_request(orjson.dumps(body)),
        _token_hash(participant),
        served_at=served_at or timezone.now(),
        served_ms=DEFAULT_HOLD_MS,
        hold_ms=DEFAULT_HOLD_MS,
    )


async def test_a_treatment_slate_answered_before_the_lookup_ended_is_logged_as_an_untreated_fallback(
    async_client: AsyncClient, enrol: Any, lookups_time_out: None, fallback_key: str
) -> None:
    participant, token = await enrol("reverse")
    body = prc_request(participant.public_id, n_posts=4)

    response = valid_response(await post_rank(async_client, token, body))
    await _late_writes()  # the late lookup and the write run after the answer

    assert response.ranked_ids == [i["id"] for i in body["items"]]  # untouched
    slate = await Slate.objects.aget(participant_id=participant.public_id)
    assert (slate.arm, slate.effective_arm, slate.ranker_key, slate.phase) == (
        "reverse",
        "reverse",
        "reverse",
        "assigned",
    )
    assert slate.fallback_reason == checks.LOOKUP_FAILED
    assert slate.intervention_on is False
    assert slate.returned_ids == slate.original_ids == [i["id"] for i in body["items"]]
    assert slate.hold_ms == DEFAULT_HOLD_MS
    assert slate.served_ms >= DEFAULT_HOLD_MS
    assert _fallback(fallback_key) == []


async def test_a_slate_in_the_baseline_weeks_is_logged_under_control(
    async_client: AsyncClient, enrol: Any, lookups_time_out: None, fallback_key: str
) -> None:
    participant, token = await enrol("reverse", past_baseline=False)

    valid_response(await post_rank(async_client, token, prc_request(participant.public_id, n_posts=2)))
    await _late_writes()

    slate = await Slate.objects.aget(participant_id=participant.public_id)
    assert (slate.arm, slate.effective_arm, slate.phase) == ("reverse", "control", "baseline")


async def test_nothing_is_logged_for_a_withdrawn_participant_whose_lookup_failed(
    async_client: AsyncClient, enrol: Any, lookups_time_out: None, fallback_key: str
) -> None:
    participant, token = await enrol("reverse")
    await Participant.objects.filter(pk=participant.pk).aupdate(withdrawn_at=timezone.now())

    body = prc_request(participant.public_id, n_posts=2)

    response = valid_response(await post_rank(async_client, token, body))
    await _late_writes()

    assert response.ranked_ids == [i["id"] for i in body["items"]]
    assert await Slate.objects.acount() == 0
    assert _fallback(fallback_key) == []


def test_attribution_follows_the_serving_rule_and_stores_nothing_it_may_not() -> None:
    enrolment = serving.Enrolment(
        public_id="p1", study_id=7, withdrawn=False, consent_ok=True, baseline_days=14, hold_ms=500, ramp_days=0,
        installed_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), arm=serving.ArmInfo(
            slug="uprank", ranker_key="uprank_bridging", is_control=False, caps=serving.CONTROL.caps,
            starts={"reddit": dt.date(2026, 1, 10)},
        ),
    )  # fmt: skip
    record = slatelog.SlateRecord(**{**_bare_record(), "token_hash": "t" * 64})

    early = serving.attribute(replace_time(record, "2026-01-05T12:00:00+00:00"), enrolment)
    late = serving.attribute(replace_time(record, "2026-02-01T12:00:00+00:00"), enrolment)

    assert early is not None
    assert late is not None
    assert (early.participant_id, early.study_id, early.arm, early.effective_arm, early.phase) == (
        "p1", 7, "uprank", "control", "baseline",
    )  # fmt: skip
    assert (late.arm, late.effective_arm, late.ranker_key, late.phase) == (
        "uprank",
        "uprank",
        "uprank_bridging",
        "assigned",
    )
    assert late.token_hash == ""  # the hash does not travel further
    assert serving.attribute(record, None) is None  # unknown or uninstalled token
    withdrawn = serving.Enrolment(**{**enrolment.__dict__, "withdrawn": True})
    assert serving.attribute(late, withdrawn) is None


def _bare_record() -> dict[str, Any]:
    return {
        "served_at": "2026-02-01T12:00:00+00:00", "participant_id": "", "study_id": 0, "arm": "",
        "effective_arm": "", "ranker_key": "", "platform": "reddit", "content_type": "post", "session_id": "s",
        "original_ids": ["a"], "original_hashes": ["h"], "returned_ids": ["a"], "added_ids": [], "deleted_ids": [],
        "invalid_items": {}, "ranker_ms": None, "served_ms": 500.0, "fallback_reason": checks.LOOKUP_FAILED,
        "intervention_on": False, "prefetch": False, "nrc": 0.0, "rbo": 1.0, "n_items": 1, "n_added": 0,
        "n_deleted": 0,
    }  # fmt: skip


def replace_time(record: slatelog.SlateRecord, served_at: str) -> slatelog.SlateRecord:
    return slatelog.SlateRecord(**{**record.__dict__, "served_at": served_at})


@pytest.fixture
def reverse_arm() -> Arm:
    study = StudyFactory(rank_hold_ms=0)
    ArmFactory(study=study, slug="control", ranker_key="control", is_control=True)
    return ArmFactory(study=study, slug="reverse", ranker_key="reverse")


def _participant(arm: Arm) -> Participant:
    participant, _ = create_test_participant(arm=arm, past_baseline=True, is_test=False)
    return participant


def _push(record: slatelog.SlateRecord) -> None:
    redis.Redis.from_url(slatelog.redis_url()).rpush(slatelog.fallback_key(), record.to_json())


@pytest.mark.usefixtures("fallback_key")
def test_the_drain_attributes_slates_that_waited_in_redis_and_drops_those_it_may_not_store(reverse_arm: Arm) -> None:
    kept, withdrawn = _participant(reverse_arm), _participant(reverse_arm)
    Participant.objects.filter(pk=withdrawn.pk).update(withdrawn_at=timezone.now())
    unknown = _record(kept)
    unknown.token_hash = "0" * 64
    for record in (_record(kept), _record(withdrawn), unknown):
        _push(record)

    moved = slatelog.drain_fallback()

    assert moved == 1
    slate = Slate.objects.get()
    assert (slate.participant_id, slate.effective_arm, slate.fallback_reason) == (
        kept.public_id, "reverse", checks.LOOKUP_FAILED,
    )  # fmt: skip
    assert all(_fallback(name) == [] for name in slatelog.fallback_lists())


@pytest.mark.usefixtures("fallback_key")
def test_erasure_removes_a_participant_s_unattributed_slates_from_redis(reverse_arm: Arm) -> None:
    erased, other = _participant(reverse_arm), _participant(reverse_arm)
    _push(_record(erased))
    _push(_record(other))

    removed = slatelog.erase_fallback(erased.public_id, {_token_hash(erased)})

    assert removed == 1
    assert [slate["token_hash"] for slate in _fallback(slatelog.fallback_key())] == [_token_hash(other)]
