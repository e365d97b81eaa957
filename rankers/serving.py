"""The ranking pipeline behind ``POST /rank``.

1. ``load_enrolment`` reads, in one query, what ranking needs to know about
   the token's participant (a plain snapshot, no ORM); lookups that arrive
   together share that query.
2. ``effective_arm`` decides whose ranker runs: nobody's (withdrawn, no valid
   consent, not assigned: untouched feed, nothing stored), control (baseline
   days after installation, or the arm has not started on this platform), or
   the assigned arm.
3. ``rank_slate`` plans the slate (fixed items, slate size, threads), runs the
   ranker within its budget, checks its output and lays it back onto the feed,
   falling back to the original order with a recorded reason on any problem.
4. ``hold_seconds`` is how long after receipt every arm answers.

``effective_arm`` and ``hold_seconds`` are pure and are the only statement of
those two rules: the demo seeder calls them too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
import psycopg
from django.conf import settings
from django.db import connections
from django.utils import timezone

from participants import treatment
from participants.models import Arm
from participants.paper import PLATFORMS, cap_rule, default_caps
from prc_site.lib import forks
from prc_site.lib.asyncdb import Coalescer, loop_pool, per_loop, within
from prc_site.lib.looplag import loop_lag
from rankers import checks, prometheus, slatelog
from rankers.checks import Caps
from rankers.content import inventory
from rankers.models import text_hash
from rankers.plugins import NewItem, RankContext, Ranker, RankResult, SlateItem, get_ranker, inserting
from rankers.scoring import service as scoring
from rankers.slate_rules import SlatePlan, apply_ranking, plan_slate
from rankers.validation import ParsedItem, ParsedRequest

logger = logging.getLogger(__name__)

# Sync rankers run here, never on the event loop. Scoring runs in neither: it is the scorer workers' job.
_EXECUTOR = forks.ThreadPool(max_workers=settings.RANK_RANKER_THREADS, thread_name_prefix="ranker")


@dataclass(frozen=True)
class ArmInfo:
    slug: str
    ranker_key: str
    is_control: bool
    caps: Caps
    config: Mapping[str, Any] = field(default_factory=dict)
    starts: Mapping[str, dt.date | None] = field(default_factory=dict)

    def has_started(self, platform: str, now: dt.datetime) -> bool:
        """Whether the arm's intervention has started on ``platform`` (``participants.treatment``)."""
        return treatment.arm_has_started(self.starts.get(platform), now)


CONTROL = ArmInfo(slug="control", ranker_key="control", is_control=True, caps=Caps(0, 0, default_caps("control")))


@dataclass(frozen=True)
class Enrolment:
    """What the ranking path knows about a token's participant."""

    public_id: str
    study_id: int
    withdrawn: bool
    consent_ok: bool
    installed_at: dt.datetime  # the extension's first registration: the baseline clock and the ramp start here
    baseline_days: int
    hold_ms: int  # the study's full hold
    ramp_days: int
    arm: ArmInfo | None
    control: ArmInfo = CONTROL
    # Baseline answers as a PRC SurveyResponse (copied onto the participant by the surveys app); {} if none.
    survey: Mapping[str, Any] = field(default_factory=dict)
    study_closed: bool = False  # a closed study ranks nothing and stores nothing


@dataclass(frozen=True)
class Effective:
    arm: ArmInfo | None  # None: untouched feed, nothing stored
    reason: str  # study_closed, withdrawn, no_consent, not_assigned, or a phase: baseline, not_started, assigned


# The phases of a logged slate (``Slate.phase``): why its effective arm is what it is.
BASELINE = "baseline"
NOT_STARTED = "not_started"
ASSIGNED = "assigned"


async def load_enrolment(token_hash: str) -> Enrolment | None:
    """The participant behind an extension token (by its SHA-256), as plain data; None if unknown.

    Lookups arriving together share one query on this event loop's connection
    pool (no thread hop, no ORM; see ``Coalescer``).
    """
    row = await per_loop(_lookups, lambda: Coalescer(_fetch_enrolments)).get(token_hash)
    return enrolment_from_row(row) if row is not None else None


def enrolment_from_row(row: Mapping[str, Any]) -> Enrolment:
    """A row of ``ENROLMENTS_BY_TOKEN_HASH_SQL`` as plain data."""
    return Enrolment(
        public_id=row["public_id"],
        study_id=row["study_id"],
        withdrawn=row["withdrawn_at"] is not None,
        study_closed=row["study_closed"],
        consent_ok=row["consent_ok"],
        installed_at=row["installed_at"],
        baseline_days=row["baseline_days"],
        hold_ms=row["rank_hold_ms"],
        ramp_days=row["ramp_days"],
        arm=_arm_info(row, "arm_"),
        control=_arm_info(row, "control_") or CONTROL,
        survey=_json(row.get("ranker_survey")) or {},
    )


def _json(value: Any) -> Any:
    """A jsonb column: psycopg's own connections decode it, Django's cursor hands over the text."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


_lookups: dict[asyncio.AbstractEventLoop, Coalescer[str, dict[str, Any]]] = {}
# Lookups for slates already answered untouched: no one waits for them, so they may take as long as a write.
_late_lookups: dict[asyncio.AbstractEventLoop, Coalescer[str, dict[str, Any]]] = {}


def _enrolment_fetcher(timeout_setting: str) -> Callable[[Sequence[str]], Awaitable[dict[str, dict[str, Any]]]]:
    """One query for many tokens, given up (TimeoutError) after the named setting's seconds: the pool wait, a
    new connection and the query all count, so a stopped, paused or slow database costs at most that. The
    request's lookup uses ``RANK_DB_LOOKUP_TIMEOUT_S``; the late one, for a slate already answered untouched,
    may take as long as a write (``RANK_WRITE_TIMEOUT_S``)."""

    async def fetch(token_hashes: Sequence[str]) -> dict[str, dict[str, Any]]:
        return await within(_read_enrolments(list(token_hashes)), getattr(settings, timeout_setting))

    return fetch


_fetch_enrolments = _enrolment_fetcher("RANK_DB_LOOKUP_TIMEOUT_S")
_fetch_late_enrolments = _enrolment_fetcher("RANK_WRITE_TIMEOUT_S")


def enrolments_for_token_hashes_sync(token_hashes: list[str]) -> dict[str, Enrolment]:
    """The same lookup through Django's connection (the fallback drain)."""
    from participants.tokens import ENROLMENTS_BY_TOKEN_HASH_SQL

    with connections["default"].cursor() as cursor:
        cursor.execute(ENROLMENTS_BY_TOKEN_HASH_SQL, [token_hashes])
        names = [column.name for column in cursor.description or ()]
        rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    return {row["token_hash"]: enrolment_from_row(row) for row in rows}


async def _read_enrolments(token_hashes: list[str]) -> dict[str, dict[str, Any]]:
    """A broken pooled connection is dropped and the read retried once."""
    from participants.tokens import aenrolments_for_token_hashes

    for attempt in (1, 2):
        try:
            async with loop_pool(settings.RANK_DB_POOL_SIZE).connection() as conn:
                return await aenrolments_for_token_hashes(conn, token_hashes)
        except (psycopg.OperationalError, psycopg.InterfaceError):
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _arm_info(row: Mapping[str, Any], prefix: str) -> ArmInfo | None:
    if row[prefix + "slug"] is None:
        return None
    return ArmInfo(
        slug=row[prefix + "slug"],
        ranker_key=row[prefix + "ranker_key"],
        is_control=row[prefix + "is_control"],
        caps=Caps(
            max_inserted=row[prefix + "max_inserted"],
            max_deleted=row[prefix + "max_deleted"],
            rule=cap_rule(
                row[prefix + "ranker_key"], row[prefix + "max_inserted_pct"], row[prefix + "max_deleted_pct"]
            ),
        ),
        config=dict(_json(row[prefix + "ranker_config"]) or {}),
        starts={platform: row[f"{prefix}starts_{platform}"] for platform in PLATFORMS},
    )


def arm_info(arm: Arm) -> ArmInfo:
    """An arm row as the ranking path sees it (the demo seeder's way in; ``/rank`` reads the same columns in SQL)."""
    return ArmInfo(
        slug=arm.slug,
        ranker_key=arm.ranker_key,
        is_control=arm.is_control,
        caps=Caps(max_inserted=arm.max_inserted, max_deleted=arm.max_deleted, rule=arm.cap_rule()),
        config=dict(arm.ranker_config or {}),
        starts={platform: arm.start_date(platform) for platform in PLATFORMS},
    )


def days_installed(enrolment: Enrolment, now: dt.datetime) -> float:
    """Fractional days since the extension was first installed (negative if ``now`` is earlier)."""
    return (now - enrolment.installed_at).total_seconds() / 86400


def effective_arm(enrolment: Enrolment, platform: str, now: dt.datetime) -> Effective:
    """Whose ranker runs for this slate. ``reason`` is also the slate's phase in the log."""
    if enrolment.study_closed:
        return Effective(None, "study_closed")
    if enrolment.withdrawn:
        return Effective(None, "withdrawn")
    if not enrolment.consent_ok:
        return Effective(None, "no_consent")
    if enrolment.arm is None:
        return Effective(None, "not_assigned")
    if treatment.in_baseline(enrolment.installed_at, enrolment.baseline_days, now):
        return Effective(enrolment.control, BASELINE)
    if not enrolment.arm.has_started(platform, now):
        return Effective(enrolment.control, NOT_STARTED)
    return Effective(enrolment.arm, ASSIGNED)


def hold_ms(enrolment: Enrolment, now: dt.datetime) -> float:
    """Receipt to answer, in ms: zero at installation, rising linearly to the study's full hold over the
    first ``ramp_days``, then the full hold for good, in every arm (the paper: "ramped up linearly from zero
    lag to 1200ms lag over the first two weeks after sign up before re-ranking began")."""
    full = float(enrolment.hold_ms)
    if enrolment.ramp_days <= 0:
        return full
    share = days_installed(enrolment, now) / enrolment.ramp_days
    return full * min(1.0, max(0.0, share))


def hold_seconds(enrolment: Enrolment | None, now: dt.datetime) -> float:
    """``hold_ms`` in seconds; the default hold when the participant is unknown (database down)."""
    if enrolment is None:
        return float(settings.RANK_DEFAULT_HOLD_MS) / 1000
    return hold_ms(enrolment, now) / 1000


@dataclass(frozen=True)
class Outcome:
    """What ``rank_slate`` decided, ready for the response and the slate log."""

    ranked_ids: list[str]
    new_items: list[NewItem]
    intervention_on: bool
    fallback_reason: str
    ranker_ms: float | None
    plan: SlatePlan
    n_scored: int | None = None  # items with every attribute the ranker reads; None: it reads none
    capped: bool = False  # the ranker inserted or removed more than its caps; its first items were kept


@dataclass(frozen=True)
class Ranked:
    """A ranker's answer and how many of the items it saw had all their attributes scored (None: it reads none)."""

    result: RankResult
    n_scored: int | None = None


def budget_seconds(arm: ArmInfo, *, received: float | None = None) -> float:
    """The arm's ranker time. For a held request (``received``, monotonic), less whatever parsing and the lookup
    took beyond the ``RANK_LOOKUP_MS`` reserved for them: a ranker ends by receipt + that reserve + its budget,
    which the system checks keep inside every hold, however late it started (a slow lookup, a loop running
    behind). Zero or less: no time is left for treatment."""
    budget = float(arm.config.get("budget_ms", settings.RANK_RANKER_BUDGET_MS)) / 1000
    if received is None:
        return budget
    overrun = HOLD_CLOCK.monotonic() - received - settings.RANK_LOOKUP_MS / 1000
    return budget - max(0.0, overrun)


async def rank_slate(
    parsed: ParsedRequest,
    arm: ArmInfo,
    *,
    user_id: str,
    now: dt.datetime,
    survey: Mapping[str, Any] | None = None,
    received: float | None = None,
) -> Outcome:
    """Rank ``parsed`` with ``arm``'s ranker. ``received`` (monotonic) is a held request's receipt: its ranker
    then gets only the time its hold has left (``budget_seconds``)."""
    session = parsed.session
    plan = plan_slate(parsed.items, session.platform, parsed.slate_pass)
    context = RankContext(
        platform=session.platform,
        content_type=plan.content_type,
        user_id=user_id,
        now=now,
        config=arm.config,
        prefetch=bool(session.prefetch),
        survey=survey or {},
        page_url=str(session.url or ""),
    )
    started = time.perf_counter()
    # Control's pass-through is no treatment work: it always gets its whole budget.
    budget = budget_seconds(arm, received=None if arm.is_control else received)
    ranked, reason = await _ranked(arm, plan.rankable, context, budget)
    ranker_ms = (time.perf_counter() - started) * 1000
    n_scored = ranked.n_scored if ranked is not None else None
    if reason is None and ranked is not None:
        reason = checks.UNSCORED if n_scored == 0 else checks.check_result(ranked.result, plan.rankable_ids)
    if reason is not None or ranked is None:
        return Outcome(list(plan.order), [], False, reason or checks.BAD_OUTPUT, ranker_ms, plan, n_scored)
    result = ranked.result
    result, capped = checks.apply_caps(result, plan.rankable_ids, arm.caps, n_items=len(plan.order))
    new_by_id = {n.id: n for n in result.new_items}
    final, _removed = apply_ranking(plan, result.ranked_ids, list(new_by_id))
    inserted = [new_by_id[i] for i in final if i in new_by_id]
    if plan.order and not final:
        return Outcome(list(plan.order), [], False, checks.EMPTY_RESULT, ranker_ms, plan, n_scored)
    return Outcome(final, inserted, not arm.is_control, "", ranker_ms, plan, n_scored, capped)


async def _ranked(
    arm: ArmInfo, items: Sequence[SlateItem], context: RankContext, budget: float
) -> tuple[Ranked | None, str | None]:
    """Run the arm's ranker within ``budget`` seconds; (answer, None) or (None, fallback reason). A treatment arm's
    work is shed (``overloaded``) when no time is left for it or this process runs behind."""
    try:
        ranker = get_ranker(arm.ranker_key)
    except LookupError:
        logger.error("arm %s names unknown ranker %r", arm.slug, arm.ranker_key)
        return None, checks.UNKNOWN_RANKER
    if not items:
        return Ranked(RankResult(ranked_ids=[]), 0 if _attributes(ranker) else None), None
    if not arm.is_control and (budget <= 0 or overloaded()):
        return None, checks.OVERLOADED
    try:
        ranking = run_ranker(ranker, items, context, scoring_s=scoring_seconds(budget))
        # Not asyncio.wait_for: it waits for the cancelled work to stop, and returns the work's answer if the
        # work swallowed the cancellation (a client library finishing its call). ``within`` answers at the budget.
        ranked = await within(ranking, max(0.0, budget))
    except TimeoutError:
        logger.warning("ranker %s timed out", arm.ranker_key)
        return None, checks.TIMEOUT
    except inventory.InventoryUnavailable as exc:
        logger.warning("ranker %s had no candidates: %s", arm.ranker_key, exc)
        return None, checks.CANDIDATES_UNAVAILABLE
    except Exception:
        logger.exception("ranker %s failed", arm.ranker_key)
        return None, checks.EXCEPTION
    return ranked, None


def overloaded() -> bool:
    """Whether this process's event loop runs so far behind (``RANK_SHED_LAG_MS``) that a treatment arm's work
    (scoring, candidates, ranking) must be shed for its slate: the work would make every hold late, control's too."""
    limit = settings.RANK_SHED_LAG_MS
    return limit > 0 and loop_lag().behind_ms() > limit


def _attributes(ranker: Ranker) -> tuple[str, ...]:
    return tuple(getattr(ranker, "attributes", ()) or ())


async def run_ranker(
    ranker: Ranker, items: Sequence[SlateItem], context: RankContext, *, scoring_s: float = 0.0
) -> Ranked:
    """Await an async ranker; otherwise fetch its attributes' scores (waiting at most ``scoring_s`` for the scorer
    workers) and, for an inserting ranker, its candidates (at the same time), and rank in the thread pool."""
    if getattr(ranker, "needs_candidates", False) and context.content_type == "post":
        loading = asyncio.ensure_future(_with_candidates(ranker, context))
        try:
            ranked = await _run_ranker(ranker, items, context, scoring_s=scoring_s, candidates=loading)
        finally:
            loading.cancel()
        return ranked
    return await _run_ranker(ranker, items, context, scoring_s=scoring_s)


async def _with_candidates(ranker: Ranker, context: RankContext) -> RankContext:
    loaded = await inventory.load(
        ranker_key=ranker.name,
        platform=context.platform,
        participant_id=context.user_id,
        now=context.now,
        shown_window=inserting.shown_window(ranker.name, context.config),
    )
    return replace(context, candidates=loaded.candidates, shown=loaded.shown, inventory_newest_at=loaded.newest_at)


async def _run_ranker(
    ranker: Ranker,
    items: Sequence[SlateItem],
    context: RankContext,
    *,
    scoring_s: float,
    candidates: asyncio.Future[RankContext] | None = None,
) -> Ranked:
    arank = getattr(ranker, "arank", None)
    if arank is not None:
        return Ranked(await arank(items, context))
    attributes = _attributes(ranker)
    if getattr(ranker, "inline", False) and not attributes:
        return Ranked(ranker.rank(items, context))  # declared trivially cheap: a thread hop would cost more
    loop = asyncio.get_running_loop()
    if not attributes:
        context = await candidates if candidates is not None else context
        return Ranked(await loop.run_in_executor(_EXECUTOR, ranker.rank, items, context))
    scores = await scoring.scores_for(items, attributes, wait_s=scoring_s)
    context = await candidates if candidates is not None else context
    n_scored = sum(1 for item in items if all(a in scores.get(item.id, {}) for a in attributes))
    result = await loop.run_in_executor(_EXECUTOR, ranker.rank, items, replace(context, scores=scores))
    return Ranked(result, n_scored)


def scoring_seconds(budget: float) -> float:
    """How long a ranker with ``budget`` seconds waits for scores: the scorer's deadline, and never past the budget
    less the margin its ranking needs."""
    return max(0.0, min(settings.PRC_SCORER_DEADLINE_S, budget - settings.RANK_SCORING_MARGIN_MS / 1000))


def response_body(outcome: Outcome) -> dict[str, Any]:
    return {
        "ranked_ids": outcome.ranked_ids,
        "new_items": [{"id": n.id, "url": n.url} for n in outcome.new_items],
        "metadata": {"intervention_on": outcome.intervention_on},
    }


def untouched_body(parsed: ParsedRequest) -> dict[str, Any]:
    return {"ranked_ids": [p.id for p in parsed.items], "new_items": [], "metadata": {"intervention_on": False}}


def ranker_exists(name: str) -> bool:
    try:
        get_ranker(name)
    except LookupError:
        return False
    return True


async def serve_participant(parsed: ParsedRequest, enrolment: Enrolment, *, received: float) -> dict[str, Any]:
    """Rank for an extension, log the slate during the hold, and answer at receipt + hold."""
    now = timezone.now()
    hold = hold_ms(enrolment, now)
    deadline = received + hold / 1000
    prometheus.ITEMS.observe(len(parsed.items))
    effective = effective_arm(enrolment, parsed.session.platform, now)
    if effective.arm is None:  # closed study, withdrawn or without consent: untouched, nothing stored
        await _sleep_until(deadline)
        return untouched_body(parsed)
    outcome = await rank_slate(
        parsed, effective.arm, user_id=enrolment.public_id, now=now, survey=enrolment.survey, received=received
    )
    _observe(effective.arm, outcome)
    served_ms = max(deadline, HOLD_CLOCK.monotonic()) - received
    record = slate_record(
        parsed, enrolment, effective, outcome, served_at=now, served_ms=served_ms * 1000, hold_ms=hold
    )
    # The write runs during the hold. A write still running at the end of the hold (plus a short grace) goes on
    # without its request: the answer never waits on the database, and the slate is stored or reaches the
    # Redis fallback within RANK_WRITE_TIMEOUT_S all the same.
    write = slatelog.start_write(record)
    await _sleep_until(deadline)
    if not write.done():
        await asyncio.wait({write}, timeout=settings.RANK_WRITE_GRACE_S)
    return response_body(outcome)


async def serve_unverified(parsed: ParsedRequest, *, received: float, token_hash: str = "") -> dict[str, Any]:
    """The participant could not be looked up in time (a database that is down, paused or swamped by a burst):
    the untouched feed at the default hold. The slate is still logged, once its participant is known
    (``log_unattributed``), so that the log stays complete and counts it as an untreated fallback."""
    now = timezone.now()
    hold = hold_seconds(None, now)
    await _sleep_until(received + hold)
    prometheus.FALLBACKS.labels(checks.LOOKUP_FAILED).inc()
    if token_hash:
        served_ms = (max(received + hold, HOLD_CLOCK.monotonic()) - received) * 1000
        record = unattributed_record(parsed, token_hash, served_at=now, served_ms=served_ms, hold_ms=hold * 1000)
        slatelog.track(log_unattributed(record))
    return untouched_body(parsed)


def unattributed_record(
    parsed: ParsedRequest, token_hash: str, *, served_at: dt.datetime, served_ms: float, hold_ms: float
) -> slatelog.SlateRecord:
    """The log record of a slate answered untouched before its participant was known: everything but who it
    was for (``attribute`` fills that in), with the token's hash to find out."""
    plan = plan_slate(parsed.items, parsed.session.platform, parsed.slate_pass)
    outcome = Outcome(list(plan.order), [], False, checks.LOOKUP_FAILED, None, plan)
    nobody = Enrolment(
        public_id="", study_id=0, withdrawn=False, consent_ok=False, installed_at=served_at,
        baseline_days=0, hold_ms=0, ramp_days=0, arm=None,
    )  # fmt: skip
    record = slate_record(
        parsed, nobody, Effective(None, ""), outcome, served_at=served_at, served_ms=served_ms, hold_ms=hold_ms
    )
    return replace(record, arm="", effective_arm="", ranker_key="", token_hash=token_hash)


def attribute(record: slatelog.SlateRecord, enrolment: Enrolment | None) -> slatelog.SlateRecord | None:
    """An unattributed slate as its participant's, by the rule that decides every served slate's arm and phase
    (``effective_arm`` at the time it was served); None where nothing may be stored (unknown or uninstalled
    token, withdrawn, no consent, closed study, not assigned)."""
    if enrolment is None:
        return None
    effective = effective_arm(enrolment, record.platform, dt.datetime.fromisoformat(record.served_at))
    if effective.arm is None:
        return None
    return replace(
        record,
        participant_id=enrolment.public_id,
        study_id=enrolment.study_id,
        arm=enrolment.arm.slug if enrolment.arm else effective.arm.slug,
        effective_arm=effective.arm.slug,
        ranker_key=effective.arm.ranker_key,
        phase=effective.reason,
        token_hash="",
    )


async def log_unattributed(record: slatelog.SlateRecord) -> None:
    """Look the participant up without the request's deadline, then store the slate as theirs; if the database
    still cannot say, the slate waits in the Redis fallback list and the drain attributes it. Never raises."""
    try:
        row = await per_loop(_late_lookups, lambda: Coalescer(_fetch_late_enrolments)).get(record.token_hash)
    except Exception:
        logger.warning("participant lookup failed again; the untouched slate waits in Redis to be attributed")
        await slatelog.push_fallback(record)
        return
    attributed = attribute(record, enrolment_from_row(row) if row is not None else None)
    if attributed is not None:
        await slatelog.write_slate(attributed)


async def serve_ranker(parsed: ParsedRequest, name: str) -> dict[str, Any]:
    """A registered ranker served alone: no hold, no participant, nothing stored but metrics."""
    caps = Caps(
        max_inserted=settings.RANK_SERVICE_MAX_INSERTED,
        max_deleted=settings.RANK_SERVICE_MAX_DELETED,
        rule=default_caps(name),
    )
    arm = ArmInfo(slug=name, ranker_key=name, is_control=name == "control", caps=caps)
    prometheus.ITEMS.observe(len(parsed.items))
    outcome = await rank_slate(parsed, arm, user_id=parsed.session.user_id, now=timezone.now())
    _observe(arm, outcome)
    return response_body(outcome)


class HoldClock:
    """The hold's time: monotonic seconds (a request's receipt, its deadline, a ranker's budget) and waiting until a
    moment. A dress rehearsal (``prc_site.simulation``) puts in one whose wait moves its time on at once, so that its
    slates record the hold they would have had without the rehearsal sleeping through it."""

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep_until(self, deadline: float) -> None:
        remaining = deadline - self.monotonic()
        if remaining > 0:
            await asyncio.sleep(remaining)


HOLD_CLOCK = HoldClock()


async def _sleep_until(deadline: float) -> None:
    await HOLD_CLOCK.sleep_until(deadline)


def _observe(arm: ArmInfo, outcome: Outcome) -> None:
    if outcome.ranker_ms is not None:
        prometheus.RANKER_SECONDS.labels(arm.ranker_key).observe(outcome.ranker_ms / 1000)
    if outcome.fallback_reason:
        prometheus.FALLBACKS.labels(outcome.fallback_reason).inc()


def slate_record(
    parsed: ParsedRequest,
    enrolment: Enrolment,
    effective: Effective,
    outcome: Outcome,
    *,
    served_at: dt.datetime,
    served_ms: float,
    hold_ms: float,
) -> slatelog.SlateRecord:
    arm = effective.arm or enrolment.control  # only slates with an effective arm are logged
    session = parsed.session
    original = outcome.plan.order
    platform = session.platform
    hashes = [_content_hash(p) for p in parsed.items]
    # Content this process has already stored is not sent again (most items repeat across slates).
    content = [
        _content_row(platform, p, digest)
        for p, digest in zip(parsed.items, hashes, strict=True)
        if not slatelog.content_stored(platform, p.id, digest)
    ]
    return slatelog.SlateRecord(
        served_at=served_at.isoformat(),
        participant_id=enrolment.public_id,
        study_id=enrolment.study_id,
        arm=enrolment.arm.slug if enrolment.arm else arm.slug,
        effective_arm=arm.slug,
        ranker_key=arm.ranker_key,
        platform=session.platform,
        content_type=outcome.plan.content_type,
        session_id=session.session_id,
        original_hashes=hashes,
        **slatelog.order_columns(
            original, outcome.ranked_ids, movable=outcome.plan.rankable_ids, slate_length=outcome.plan.slate_length
        ),
        slate_pass=outcome.plan.slate_pass,
        fixed_items=outcome.plan.fixed,
        capped=outcome.capped,
        inserted=[item.provenance() for item in outcome.new_items],
        invalid_items=parsed.invalid,
        ranker_ms=outcome.ranker_ms,
        served_ms=served_ms,
        fallback_reason=outcome.fallback_reason,
        intervention_on=outcome.intervention_on,
        prefetch=bool(session.prefetch),
        content=content,
        hold_ms=hold_ms,
        phase=effective.reason,
        n_scored=outcome.n_scored,
    )


def _content_hash(parsed: ParsedItem) -> str:
    item = parsed.item
    if item is not None:
        return text_hash(item.text, item.title)
    return text_hash(_text(parsed.raw.get("text")), _text(parsed.raw.get("title")))


def _content_row(platform: str, parsed: ParsedItem, digest: str) -> slatelog.ContentRow:
    item, raw = parsed.item, parsed.raw
    text = item.text if item else _text(raw.get("text"))
    title = item.title if item else _text(raw.get("title"))
    return slatelog.ContentRow(
        platform=platform,
        item_id=parsed.id,
        text_hash=digest,
        type=item.type if item else _text(raw.get("type"))[:20],
        post_id=(item.post_id if item else None) or "",
        parent_id=(item.parent_id if item else None) or "",
        title=title or "",
        text=text,
        author_name_hash=item.author_name_hash if item else _text(raw.get("author_name_hash"))[:128],
        created_at=item.created_at.isoformat() if item and item.created_at else None,
        embedded_urls=[str(u) for u in item.embedded_urls] if item else [],
    )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
