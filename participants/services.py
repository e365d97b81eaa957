"""Workflows of one participant's journey: vendor entry, screening, consent, randomization,
extension registration and heartbeats, withdrawal.

Every function is keyword-only and safe to call twice: a repeat returns the first result and never
loses what is already stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, connection, transaction
from django.db.models import CharField, F, Q, Value
from django.db.models.functions import Cast, Coalesce, Concat
from django.utils import timezone

from participants import events, randomization, tokens
from participants.audit import record_audit
from participants.link_builder import TEST_PARAM, is_test_entry
from participants.models import (
    Assignment,
    ConsentDocument,
    ConsentRecord,
    ExtensionInstall,
    Heartbeat,
    Participant,
    RecruitmentSource,
    StratumCounter,
    Study,
    VendorEvent,
    hash_vendor_pid,
    sha256_hex,
)
from participants.screening import screening_failures
from participants.signals import participant_erasing, participant_withdrawn
from participants.vendors import (
    SIGNATURE_PARAM,
    outbound_url,
    query_is_clean,
    scrub_params,
    scrub_url,
    signature_is_valid,
    storable_link,
)

logger = logging.getLogger(__name__)

Outcome = RecruitmentSource.Outcome
Stage = Participant.Stage
Actor = AbstractBaseUser | AnonymousUser | Participant | None


class EnrolmentError(Exception):
    """A participant-facing refusal with a stable code (used for API errors and page messages)."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


def study_closed_error(field: str | None = None) -> EnrolmentError:
    return EnrolmentError("study_closed", "This study has ended and is not taking new participants.", field)


# --- Vendor entry and redirects ---------------------------------------------------------------


def find_source(
    *, source_slug: str, study_slug: str | None = None, statuses: tuple[str, ...] = Study.SIGNUP_STATUSES
) -> RecruitmentSource | None:
    """The active source behind an entry link, in a study taking signups; None if unknown or ambiguous.

    A study takes signups while recruiting and while running, never as a draft or once closed (a
    researcher's test link also opens a draft study: ``statuses``).
    """
    sources = RecruitmentSource.objects.select_related("study").filter(
        slug=source_slug, active=True, study__status__in=statuses
    )
    if study_slug is not None:
        sources = sources.filter(study__slug=study_slug)
    found = list(sources[:2])
    if len(found) == 2:
        logger.error(
            "source slug %r is active in several studies taking signups; use /join/<study>/<source>/", source_slug
        )
    return found[0] if len(found) == 1 else None


def log_vendor_event(
    *,
    kind: str,
    source_slug: str,
    url: str,
    params: Mapping[str, Any] | None = None,
    source: RecruitmentSource | None = None,
    participant: Participant | None = None,
    outcome: str = "",
    note: str = "",
) -> VendorEvent:
    return VendorEvent.objects.create(
        kind=kind,
        source=source,
        source_slug=source_slug,
        participant=participant,
        outcome=outcome,
        url=url,
        params=dict(params or {}),
        note=note[:300],
    )


@dataclass(frozen=True)
class Entry:
    participant: Participant
    created: bool


def start_screening(*, source: RecruitmentSource, vendor_pid: str, is_test: bool = False) -> Entry:
    """The participant for this vendor id: a new one, or the existing one when the id repeats.

    Participants are found by the keyed hash of the vendor id, so an id whose participant has been
    erased is still recognised (and sent back to the vendor as a duplicate). ``is_test`` flags a
    researcher's test participant, for good, at creation.
    """
    pid_hash = hash_vendor_pid(vendor_pid)
    existing = Participant.objects.filter(source=source, vendor_pid_hash=pid_hash).first()
    if existing is not None:
        return Entry(existing, created=False)
    participant = Participant(study=source.study, source=source, is_test=is_test)
    participant.set_vendor_pid(vendor_pid)
    try:
        with transaction.atomic():
            participant.save(force_insert=True)
    except IntegrityError:  # the same link opened twice at once: the other request created the row
        return Entry(Participant.objects.get(source=source, vendor_pid_hash=pid_hash), created=False)
    return Entry(participant, created=True)


def vendor_redirect_url(*, participant: Participant, outcome: str, note: str = "", vendor_pid: str = "") -> str | None:
    """Where to send the participant back to their vendor for ``outcome``; the redirect is recorded.

    ``vendor_pid`` is the id from the link just followed, for a participant whose own id has been
    erased (a re-entry after withdrawal); the recorded link then has it scrubbed.
    None when the source has no template for it (an ad channel, say): the caller shows a page instead.
    """
    source = participant.source
    if source is None or not source.redirect_template(outcome):
        return None
    pid = participant.vendor_pid or vendor_pid
    url = outbound_url(source.redirect_template(outcome), pid)
    log_vendor_event(
        kind=VendorEvent.Kind.REDIRECT,
        source=source,
        source_slug=source.slug,
        participant=participant,
        outcome=outcome,
        url=scrub_url(url, pid) if participant.erased_at else url,
        note=note,
    )
    return url


def _finish_with_vendor(participant: Participant, outcome: str, at: dt.datetime) -> None:
    if participant.set_vendor_outcome(outcome, at):
        record_audit(action="vendor.outcome", obj=participant, detail={"outcome": outcome})


# --- Screening -----------------------------------------------------------------------------------


def source_is_full(source: RecruitmentSource) -> bool:
    if source.quota is None:
        return False
    return Participant.objects.real().filter(source=source, consented_at__isnull=False).count() >= source.quota


def submit_screener(*, participant: Participant, answers: Mapping[str, Any], at: dt.datetime | None = None) -> str:
    """Store the answers and decide: ``screened_in``, ``screenout`` or ``overquota``.

    Only a participant still in screening is screened; a repeat returns the earlier decision.
    """
    at = at or timezone.now()
    with transaction.atomic():
        participant = (
            Participant.objects.select_for_update(of=("self",)).select_related("study", "source").get(pk=participant.pk)
        )
        if participant.stage != Stage.SCREENING:
            return participant.vendor_outcome or Stage.SCREENED_IN
        study = participant.study
        participant.screener_answers = dict(answers)
        participant.strata = {field: answers.get(field, "") for field in study.strata_fields}
        if screening_failures(answers, study.screener_rules):
            participant.stage, decision = Stage.SCREENED_OUT, str(Outcome.SCREENOUT)
        elif participant.source is not None and source_is_full(participant.source):
            participant.stage, decision = Stage.OVERQUOTA, str(Outcome.OVERQUOTA)
        else:
            participant.stage, decision = Stage.SCREENED_IN, str(Stage.SCREENED_IN)
            participant.screened_in_at = at
        participant.save(update_fields=["screener_answers", "strata", "stage", "screened_in_at"])
        if decision != Stage.SCREENED_IN:
            _finish_with_vendor(participant, decision, at)
    return decision


# --- Randomization -------------------------------------------------------------------------------


def study_weights(study: Study) -> list[tuple[str, int]]:
    """The arms in their fixed order (by id) with their weights: the input of every block."""
    return list(study.arms.order_by("id").values_list("slug", "allocation_weight"))


def _locked_counter(study: Study, stratum: str) -> StratumCounter:
    # ON CONFLICT DO NOTHING makes the first signup of a stratum race-free: a concurrent insert
    # waits for the other transaction instead of failing, then both lock the one row.
    StratumCounter.objects.bulk_create([StratumCounter(study=study, stratum=stratum)], ignore_conflicts=True)
    return StratumCounter.objects.select_for_update().get(study=study, stratum=stratum)


def assign_arm(*, participant: Participant, at: dt.datetime | None = None) -> Assignment:
    """Randomize the participant into an arm, once; a repeat returns the first assignment.

    Takes the next position of the participant's stratum under a row lock, so concurrent signups
    get consecutive positions and every block fills exactly.
    """
    with transaction.atomic():
        participant = Participant.objects.select_for_update(of=("self",)).select_related("study").get(pk=participant.pk)
        existing = Assignment.objects.filter(participant=participant).select_related("arm").first()
        if existing is not None:
            return existing
        study = participant.study
        label = randomization.stratum_key(study.strata_fields, participant.screener_answers)
        stratum = randomization.stratum_code(study.randomization_seed, label)
        if participant.is_test:  # its own sequence: a test never takes a position of the real one
            stratum = randomization.TEST_PREFIX + stratum
        counter = _locked_counter(study, stratum)
        position = counter.next_position
        slug = randomization.allocation_at(study.randomization_seed, stratum, study_weights(study), position)
        counter.next_position = position + 1
        counter.save(update_fields=["next_position"])
        assignment = Assignment.objects.create(
            participant=participant,
            arm=study.arms.get(slug=slug),
            stratum=stratum,
            position=position,
            assigned_at=at or timezone.now(),
        )
        record_audit(
            action="assignment.created",
            obj=participant,
            detail={"arm": slug, "stratum": stratum, "position": position},
        )
    return assignment


# --- Consent -------------------------------------------------------------------------------------


def current_consent_document(*, study: Study, at: dt.datetime | None = None) -> ConsentDocument | None:
    return ConsentDocument.objects.current_for(study.pk, at).first()


def consent_is_current(participant: Participant, at: dt.datetime | None = None) -> bool:
    return participant.has_current_consent(at)


@dataclass(frozen=True)
class ConsentResult:
    record: ConsentRecord
    created: bool
    enrolment_code: str | None = None  # only when this call enrolled the participant
    status_key: str | None = None


def consent_participant(
    *,
    participant: Participant,
    document: ConsentDocument,
    answers: Mapping[str, bool],
    ip: str = "",
    user_agent: str = "",
    at: dt.datetime | None = None,
) -> ConsentResult:
    """Record consent to ``document``; on the first consent also randomize and enrol.

    Enrolling means: an arm (``assign_arm``), an enrolment code for the extension, a private
    status-page key, and the vendor outcome ``complete``. A replay for the same document returns
    the first record and issues nothing new; a later version is a re-consent and changes nothing else.
    """
    at = at or timezone.now()
    with transaction.atomic():
        participant = Participant.objects.select_for_update(of=("self",)).select_related("study").get(pk=participant.pk)
        existing = ConsentRecord.objects.filter(participant=participant, document=document).first()
        if existing is not None:
            return ConsentResult(existing, created=False)
        _check_can_consent(participant, document, answers, at)
        record = ConsentRecord.objects.create(
            participant=participant,
            document=document,
            given_at=at,
            ip_hash=tokens.hash_ip(ip),
            user_agent=user_agent[:500],
            answers=dict(answers),
        )
        first = participant.consented_at is None
        record_audit(
            action="consent.given" if first else "consent.renewed",
            obj=participant,
            actor=participant,
            detail={"version": document.version, "document": document.pk},
        )
        if not first:
            return ConsentResult(record, created=True)
        code, key = _enrol(participant, at)
    return ConsentResult(record, created=True, enrolment_code=code, status_key=key)


def _check_can_consent(
    participant: Participant, document: ConsentDocument, answers: Mapping[str, bool], at: dt.datetime
) -> None:
    if participant.study.is_closed:
        raise study_closed_error()
    if participant.is_withdrawn:
        raise EnrolmentError("withdrawn", "You have left the study.")
    if participant.stage not in (Stage.SCREENED_IN, Stage.CONSENTED, Stage.ENROLLED):
        raise EnrolmentError("not_screened_in", "Please answer the screening questions first.")
    current = current_consent_document(study=participant.study, at=at)
    if current is None or current.pk != document.pk:
        raise EnrolmentError("stale_document", "The consent form has changed; please read the new version.")
    if any(answers.get(question) is not True for question in document.questions):
        raise EnrolmentError("missing_answers", "Please tick every statement to take part.")


def _enrol(participant: Participant, at: dt.datetime) -> tuple[str, str]:
    key = tokens.new_status_key()
    participant.consented_at = at
    participant.stage = Stage.CONSENTED
    participant.status_key_hash = sha256_hex(key)
    participant.save(update_fields=["consented_at", "stage", "status_key_hash"])
    assign_arm(participant=participant, at=at)
    code = issue_enrolment_code(participant=participant, at=at)
    _finish_with_vendor(participant, Outcome.COMPLETE, at)
    return code, key


def issue_enrolment_code(*, participant: Participant, at: dt.datetime | None = None) -> str:
    """A fresh enrolment code (the previous one stops working), e.g. to reinstall the extension."""
    if participant.is_withdrawn or participant.consented_at is None:
        raise EnrolmentError("not_enrolled", "Only consented participants get an enrolment code.")
    at = at or timezone.now()
    code = tokens.new_enrolment_code()
    Participant.objects.filter(pk=participant.pk).update(
        enrolment_code_hash=tokens.hash_enrolment_code(code),
        enrolment_code_expires_at=at + dt.timedelta(hours=participant.study.enrolment_code_ttl_hours),
        enrolment_code_used_at=None,
    )
    return code


# --- Extension -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    token: str
    participant: Participant
    install: ExtensionInstall
    created: bool


def register_extension(
    *, enrolment_code: str, install_key: str, extension_version: str = "", at: dt.datetime | None = None
) -> Registration:
    """Exchange an enrolment code for an extension token.

    A repeat with the same code and the same ``install_key`` (a retry whose response was lost)
    returns the same install with a *new* token: the server cannot give back the first token
    because it keeps only its hash, and rotating means no token the client never received stays
    valid. A code already used by another install, expired, or unknown is refused, and so is an
    ``install_key`` already registered to another participant of the study (logged and audited),
    and any code once the study has closed.
    """
    try:
        return _register_extension(enrolment_code, install_key, extension_version, at or timezone.now())
    except InstallKeyInUse as refused:
        _record_install_key_refusal(refused)
        raise


def _register_extension(enrolment_code: str, install_key: str, extension_version: str, at: dt.datetime) -> Registration:
    code_hash = tokens.hash_enrolment_code(enrolment_code)
    with transaction.atomic():
        participant = (
            Participant.objects.select_for_update(of=("self",))
            .select_related("study")
            .filter(enrolment_code_hash=code_hash, withdrawn_at__isnull=True)
            .first()
        )
        if participant is None or not tokens.normalize_enrolment_code(enrolment_code):
            raise EnrolmentError("code_unknown", "This enrolment code is not known.", "enrolment_code")
        if participant.study.is_closed:
            raise study_closed_error("enrolment_code")
        _check_install_key_is_free(participant, install_key)
        token = tokens.new_extension_token()
        if participant.enrolment_code_used_at is not None:
            return _repeat_registration(participant, install_key, extension_version, token)
        if participant.enrolment_code_expires_at is not None and participant.enrolment_code_expires_at <= at:
            raise EnrolmentError("code_expired", "This enrolment code has expired.", "enrolment_code")
        install, created = ExtensionInstall.objects.update_or_create(
            participant=participant,
            install_key=install_key,
            defaults={"token_hash": ExtensionInstall.hash_token(token), "uninstalled_at": None},
            create_defaults={
                "token_hash": ExtensionInstall.hash_token(token),
                "installed_at": at,
                "extension_version": extension_version,
            },
        )
        participant.enrolment_code_used_at = at
        participant.enrolled_at = participant.enrolled_at or at
        participant.stage = Stage.ENROLLED
        participant.save(update_fields=["enrolment_code_used_at", "enrolled_at", "stage"])
        record_audit(action="extension.registered", obj=participant, actor=participant, detail={"install": install.pk})
    return Registration(token, participant, install, created)


class InstallKeyInUse(EnrolmentError):
    def __init__(self, participant: Participant, registered_to: str, install_key: str) -> None:
        super().__init__(
            "install_key_in_use", "This browser is already registered to another participant of this study.",
            "install_key",
        )  # fmt: skip
        self.participant, self.registered_to, self.install_key = participant, registered_to, install_key


def _check_install_key_is_free(participant: Participant, install_key: str) -> None:
    """One browser, one participant: an install key registered to someone else in the study is refused.

    An advisory lock on (study, key) makes two registrations of one key under two identities at once queue
    up, so the second sees the first.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_install_key_lock(participant.study_id, install_key)])
    other = (
        ExtensionInstall.objects.filter(participant__study_id=participant.study_id, install_key=install_key)
        .exclude(participant=participant)
        .values_list("participant__public_id", flat=True)
        .first()
    )
    if other is not None:
        raise InstallKeyInUse(participant, other, install_key)


def _record_install_key_refusal(refused: InstallKeyInUse) -> None:
    """Logged and audited after the registration's transaction rolled back: one browser, two vendor identities."""
    participant = refused.participant
    logger.warning("install key already registered to %s; refused for %s", refused.registered_to, participant)
    record_audit(
        action="extension.install_key_refused",
        obj=participant,
        actor=participant,
        detail={"registered_to": refused.registered_to, "install_key_hash": sha256_hex(refused.install_key)},
    )


def _install_key_lock(study_id: int, install_key: str) -> int:
    digest = hashlib.blake2b(f"participants.install_key:{study_id}:{install_key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _repeat_registration(
    participant: Participant, install_key: str, extension_version: str, token: str
) -> Registration:
    install = participant.installs.filter(install_key=install_key, uninstalled_at__isnull=True).first()
    if install is None:
        raise EnrolmentError("code_used", "This enrolment code has already been used.", "enrolment_code")
    install.token_hash = ExtensionInstall.hash_token(token)
    install.extension_version = extension_version or install.extension_version
    install.save(update_fields=["token_hash", "extension_version"])
    return Registration(token, participant, install, created=False)


@dataclass(frozen=True)
class HeartbeatResult:
    stored: bool
    included: bool
    collect: bool
    study_closed: bool = False


def record_heartbeat(
    *,
    participant: Participant,
    install: ExtensionInstall,
    platform: str = "",
    active_seconds: int = 0,
    client_key: str = "",
    at: dt.datetime | None = None,
) -> HeartbeatResult:
    """Note that the extension is alive, and include the participant once installed long enough.

    Withdrawn participants and participants of a closed study are answered (so the extension stops
    collecting, and in a closed study removes itself) but nothing is stored.
    """
    if participant.study.is_closed:
        return HeartbeatResult(
            stored=False, included=participant.included_at is not None, collect=False, study_closed=True
        )
    if participant.is_withdrawn:
        return HeartbeatResult(stored=False, included=participant.included_at is not None, collect=False)
    at = at or timezone.now()
    fields = {"at": at, "platform": platform, "active_seconds": active_seconds}
    if client_key:
        _, stored = Heartbeat.objects.get_or_create(install=install, client_key=client_key, defaults=fields)
    else:
        Heartbeat.objects.create(install=install, **fields)
        stored = True
    ExtensionInstall.objects.filter(pk=install.pk).update(last_seen_at=at)
    return HeartbeatResult(stored=stored, included=_include_if_due(participant, install, at), collect=True)


def inclusion_is_due(
    *,
    installed_at: dt.datetime,
    baseline_completed_at: dt.datetime | None,
    at: dt.datetime,
    inclusion_days: int,
    needs_baseline: bool,
) -> bool:
    """The paper's inclusion rule, in one place: the extension installed for ``inclusion_days`` (a week)
    and, unless the study says otherwise, the baseline survey done ("completion of baseline survey and
    the extension kept installed for at least one week", supplementary section 4)."""
    if at - installed_at < dt.timedelta(days=inclusion_days):
        return False
    return not needs_baseline or (baseline_completed_at is not None and baseline_completed_at <= at)


def _include_if_due(participant: Participant, install: ExtensionInstall, at: dt.datetime) -> bool:
    if participant.included_at is not None:
        return True
    study = participant.study
    due = inclusion_is_due(
        installed_at=install.installed_at,
        baseline_completed_at=participant.baseline_completed_at,
        at=at,
        inclusion_days=study.inclusion_days,
        needs_baseline=study.inclusion_needs_baseline,
    )
    if not due:
        return False
    if Participant.objects.filter(pk=participant.pk, included_at__isnull=True, withdrawn_at__isnull=True).update(
        included_at=at
    ):
        participant.included_at = at
        record_audit(action="participant.included", obj=participant, detail={"install": install.pk})
    return True


def record_baseline_completion(
    *,
    participant: Participant,
    at: dt.datetime,
    ranker_survey: Mapping[str, Any],
    issue_positions: Mapping[str, Any] | None = None,
) -> bool:
    """Note that the baseline survey is done (the first time is kept) and copy the answers rankers may read:
    the PRC ``SurveyResponse`` and the issue positions Challenging Stereotypes personalizes on.

    Includes the participant at once when their extension has already been installed long enough;
    otherwise the next heartbeat after the week does. True if the participant is included now.
    Called by the surveys app, inside the transaction that records the completion.
    """
    Participant.objects.filter(pk=participant.pk).update(
        baseline_completed_at=Coalesce(F("baseline_completed_at"), Value(at)),
        ranker_survey=dict(ranker_survey),
        baseline_issue_positions=dict(issue_positions or {}),
    )
    participant.refresh_from_db(
        fields=["baseline_completed_at", "ranker_survey", "baseline_issue_positions", "included_at", "withdrawn_at"]
    )
    if participant.is_withdrawn:
        return False
    install = participant.installs.filter(uninstalled_at__isnull=True).order_by("installed_at").first()
    return install is not None and _include_if_due(participant, install, at)


def uninstall_extension(*, install: ExtensionInstall, at: dt.datetime | None = None) -> ExtensionInstall:
    """Mark the install removed (its token stops working); a repeat keeps the first time."""
    at = at or timezone.now()
    if ExtensionInstall.objects.filter(pk=install.pk, uninstalled_at__isnull=True).update(uninstalled_at=at):
        record_audit(action="extension.uninstalled", obj=install.participant, detail={"install": install.pk})
    install.refresh_from_db(fields=["uninstalled_at"])
    return install


# --- Withdrawal ----------------------------------------------------------------------------------


def withdraw_participant(*, participant: Participant, by: Actor, reason: str = "") -> bool:
    """Withdraw the participant; True if this call did it, False if they had already withdrawn.

    Collection and intervention stop at once (``withdrawn_at`` is what the ranking path and the
    heartbeat check), and the enrolment code stops working. The consent the participant last gave
    decides whether data collected so far is erased (``erase_participant_data``, in this same
    transaction: the withdrawal and the erasure commit together or not at all) or kept, with the
    reason in their words. The audit event records whether a reason was given, never its text.
    Other apps cancel what they own through the ``participant_withdrawn`` signal, sent after commit.
    """
    at = timezone.now()
    with transaction.atomic():
        withdrawn = Participant.objects.filter(pk=participant.pk, withdrawn_at__isnull=True).update(
            withdrawn_at=at, stage=Stage.WITHDRAWN, enrolment_code_hash=""
        )
        if not withdrawn:
            participant.refresh_from_db()
            return False
        last = participant.consents.select_related("document").order_by("-given_at").first()
        erase = last is not None and last.document.on_withdrawal == ConsentDocument.OnWithdrawal.DELETE
        detail = {"reason_given": bool(reason.strip()), "erase": erase}
        record_audit(action="participant.withdrawn", obj=participant, actor=by, detail=detail)
        if erase:
            erase_participant_data(participant=participant, at=at)
        else:
            Participant.objects.filter(pk=participant.pk).update(withdrawal_reason=reason)
        participant.refresh_from_db()
        transaction.on_commit(lambda: _announce_withdrawal(participant, by, reason, erase))
    return True


# What erasure blanks on the participant row, with the value it leaves.
ERASED_FIELDS: dict[str, Any] = {
    "vendor_pid": "",
    "email": "",
    "screener_answers": {},
    "strata": {},
    "baseline_issue_positions": {},
    "ranker_survey": {},
    "withdrawal_reason": "",
}


def erase_participant_data(*, participant: Participant, at: dt.datetime | None = None) -> dict[str, Any]:
    """Erase what identifies the participant or was collected about them; returns what was erased.

    Runs inside the caller's transaction (``withdraw_participant``) and is safe to run again.
    What stays, and why, is listed in docs/enrolment.md: the row itself under its pseudonymous id
    (payments, the assignment and consent records point at it), the keyed hash of the vendor id
    (a re-entry is still a duplicate), the assignment with its opaque stratum code, consent records
    without the browser's details, payments, and the audit trail (which never holds these values).
    Other apps erase what they hold through ``participant_erasing``, sent here, in the same
    transaction: a receiver that fails rolls the whole withdrawal back rather than leave data behind.
    The ``participant.erased`` audit event is written last, listing what was actually erased.
    """
    at = at or timezone.now()
    with transaction.atomic():
        participant = (
            Participant.objects.select_for_update(of=("self",)).select_related("source").get(pk=participant.pk)
        )
        erased: dict[str, Any] = {"fields": sorted(ERASED_FIELDS)}
        erased["vendor_events"] = _scrub_vendor_events(participant)
        Participant.objects.filter(pk=participant.pk).update(**ERASED_FIELDS, erased_at=at)
        erased["heartbeats"], _ = Heartbeat.objects.filter(install__participant=participant).delete()
        erased["installs"] = ExtensionInstall.objects.filter(participant=participant).update(
            install_key=Concat(Value("erased-"), Cast("pk", output_field=CharField())), extension_version=""
        )
        erased["consent_browser_details"] = ConsentRecord.objects.filter(participant=participant).update(
            ip_hash="", user_agent=""
        )
        erased.update(events.erase_events(participant))
        for _receiver, counts in participant_erasing.send(sender=Participant, participant=participant, at=at):
            if isinstance(counts, dict):
                erased.update(counts)
        record_audit(action="participant.erased", obj=participant, detail=erased)
    return erased


def _scrub_vendor_events(participant: Participant) -> int:
    """Remove the vendor id from every stored link of this participant, and from refused links that carried it."""
    source, vendor_pid = participant.source, participant.vendor_pid
    if source is None or not vendor_pid:
        return 0
    links = Q(participant=participant) | Q(source=source, params__contains={source.pid_param: [vendor_pid]})
    scrubbed = 0
    for event in VendorEvent.objects.filter(links).select_for_update():
        event.url, event.params = scrub_url(event.url, vendor_pid), scrub_params(event.params, vendor_pid)
        event.save(update_fields=["url", "params"])
        scrubbed += 1
    return scrubbed


def _announce_withdrawal(participant: Participant, by: Actor, reason: str, erase: bool) -> None:
    results = participant_withdrawn.send_robust(
        sender=Participant, participant=participant, by=by, reason=reason, erase=erase
    )
    for receiver, error in results:
        if isinstance(error, Exception):
            logger.error("participant_withdrawn receiver %r failed for %s", receiver, participant, exc_info=error)


# --- Entry from a vendor link --------------------------------------------------------------------


@dataclass(frozen=True)
class EntryDecision:
    """What the entry link leads to: ``start`` (or resume) screening, ``duplicate``, or a refusal page."""

    kind: str  # start | duplicate | unavailable | rejected
    status: int = 200
    participant: Participant | None = None
    source: RecruitmentSource | None = None
    vendor_pid: str = ""  # a duplicate's id from the link (an erased participant's own id is gone)


def enter_from_vendor(
    *,
    source_slug: str,
    study_slug: str | None,
    query_string: str,
    params: Mapping[str, list[str]],
    url: str,
    session_participant_id: int | None,
) -> EntryDecision:
    """Check an inbound vendor link, record it raw, and find or create the participant.

    Unknown source, missing id or bad signature: a refusal (no participant). A vendor id seen
    before is a duplicate, unless this browser is the one that started with it (a reload).
    """
    marker = str(params.get(TEST_PARAM, [""])[0])
    statuses = (*Study.SIGNUP_STATUSES, Study.Status.DRAFT) if marker else Study.SIGNUP_STATUSES
    source = find_source(source_slug=source_slug, study_slug=study_slug, statuses=statuses)
    is_test = source is not None and is_test_entry(source, _vendor_pid(source, params), marker)
    if source is not None and source.study.status == Study.Status.DRAFT and not is_test:
        source = None  # only a researcher's test link opens a draft study
    vendor_pid = _vendor_pid(source, params) if source else ""
    url = storable_link(url)
    clean = query_is_clean(query_string)

    def refuse(kind: str, status: int, note: str) -> EntryDecision:
        logger.warning("vendor link refused (%s) from source %r", note, source_slug)
        # An unclean link is kept whole, percent-encoded, in ``url``, and without its decoded params.
        link = _erased_safe_link(source, vendor_pid, url, params if clean else {})
        log_vendor_event(kind=VendorEvent.Kind.REJECTED, source=source, source_slug=source_slug, **link, note=note)
        return EntryDecision(kind, status, source=source)

    if not clean:
        return refuse("unavailable", 400, "NUL, control or undecodable bytes in the link")
    if source is None:
        return refuse("unavailable", 404, "unknown or inactive source")
    if not vendor_pid.strip() or len(vendor_pid) > 255:
        return refuse("unavailable", 400, f"missing or invalid {source.pid_param}")
    signature = str(params.get(SIGNATURE_PARAM, [""])[0])
    if source.signing_secret and not signature_is_valid(query_string, signature, source.signing_secret):
        return refuse("rejected", 403, "bad or missing signature")
    entry = start_screening(source=source, vendor_pid=vendor_pid, is_test=is_test)
    participant = entry.participant
    link = _erased_safe_link(source, vendor_pid, url, params, participant)
    log_vendor_event(
        kind=VendorEvent.Kind.INBOUND, source=source, source_slug=source_slug, **link, participant=participant
    )
    if entry.created or session_participant_id == participant.pk:
        return EntryDecision("start", participant=participant, source=source)
    return EntryDecision("duplicate", participant=participant, source=source, vendor_pid=vendor_pid)


def _erased_safe_link(
    source: RecruitmentSource | None,
    vendor_pid: str,
    url: str,
    params: Mapping[str, Any],
    participant: Participant | None = None,
) -> dict[str, Any]:
    """The link as it may be stored: raw, unless it carries the vendor id of an erased participant."""
    if source is not None and vendor_pid and participant is None:
        participant = Participant.objects.filter(source=source, vendor_pid_hash=hash_vendor_pid(vendor_pid)).first()
    if participant is None or participant.erased_at is None:
        return {"url": url, "params": params}
    return {"url": scrub_url(url, vendor_pid), "params": scrub_params(params, vendor_pid)}


def _vendor_pid(source: RecruitmentSource, params: Mapping[str, list[str]]) -> str:
    """The vendor's id, from the source's id parameter matched without regard to case (PID, pid, Pid)."""
    wanted = source.pid_param.lower()
    for name, values in params.items():
        if name.lower() == wanted and values:
            return str(values[0])
    return ""
