"""The payments ledger service: the one place that writes or moves a ``Payment``, with an audit event each time.

Credits (survey completions, manual adjustments, lottery prizes) are idempotent by key: a repeat
returns the first entry. Status moves follow ``Payment.TRANSITIONS`` (owed -> approved -> paid or
failed), claimed with a conditional update so that two researchers clicking at once move a row once.
Payouts leave in batches, one file per payout method; the provider's results come back as a CSV that is
checked line by line, and a bad line changes nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import secrets
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.auth.models import User as DjangoUser
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from participants.audit import record_audit
from participants.lottery import draw_winners
from participants.models import LotteryDraw, Participant, Payment, PayoutBatch, PayoutMethod, Study

Status = Payment.Status
Kind = Payment.Kind
User = AbstractBaseUser | AnonymousUser | None
CENT = Decimal("0.01")


class PaymentError(Exception):
    """A refused credit or move, with a stable code and the form field it concerns."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


@dataclass(frozen=True)
class Credit:
    payment: Payment
    created: bool


# --- credits -------------------------------------------------------------------------------------


def credit_payment(
    *,
    participant: Participant,
    amount: Decimal,
    kind: str,
    reason: str,
    idempotency_key: str,
    by: User = None,
    at: dt.datetime | None = None,
) -> Credit:
    """Add an owed entry once per ``idempotency_key``; a repeat returns the first entry unchanged.

    The participant's row is locked while the cap is checked, so concurrent credits (the same key
    twice, or two keys that together pass the cap) are decided one after the other.
    """
    amount = Decimal(amount).quantize(CENT)
    if amount <= 0:
        raise PaymentError("invalid_amount", "The amount must be more than zero.", "amount")
    if not idempotency_key:
        raise PaymentError("missing_key", "A payment needs an idempotency key.", "idempotency_key")
    with transaction.atomic():
        locked = Participant.objects.select_for_update(of=("self",)).select_related("study", "source")
        participant = locked.get(pk=participant.pk)
        existing = Payment.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            if existing.participant_id != participant.pk:
                raise PaymentError("key_conflict", "This key belongs to another participant.", "idempotency_key")
            return Credit(existing, created=False)
        if kind != Kind.LOTTERY:
            _check_cap(participant, amount)
        payment = Payment.objects.create(
            participant=participant,
            amount=amount,
            kind=kind,
            reason=reason[:200],
            method=participant.source.payout_method if participant.source else PayoutMethod.GIFT_CARD,
            idempotency_key=idempotency_key,
            created_at=at or timezone.now(),
        )
        record_audit(
            action="payment.credited",
            obj=payment,
            actor=by,
            detail={"participant": participant.public_id, "amount": str(amount), "kind": kind, "reason": reason},
        )
    return Credit(payment, created=True)


def room_under_cap(participant: Participant) -> Decimal | None:
    """How much more may be credited to the participant (None: the study has no cap)."""
    cap = participant.study.payment_cap
    if cap is None:
        return None
    credited = participant.payments.capped().aggregate(total=Sum("amount"))["total"] or Decimal("0")
    return max(cap - credited, Decimal("0"))


def _check_cap(participant: Participant, amount: Decimal) -> None:
    room = room_under_cap(participant)
    if room is not None and amount > room:
        raise PaymentError(
            "over_cap", f"This would pass the participant's cap: at most {room} more can be credited.", "amount"
        )


def credit_survey_payment(
    *, participant: Participant, amount: Decimal, wave: str, idempotency_key: str, at: dt.datetime | None = None
) -> Credit | None:
    """What survey completion calls: owe ``amount`` for the completed ``wave`` (a label such as "Midline survey").

    Never raises for the cap, so that recording a completion cannot fail because of payments: a credit
    that would pass the cap is trimmed to what is left, and nothing is credited (None) when nothing is.
    """
    with transaction.atomic():
        Participant.objects.select_for_update(of=("self",)).get(pk=participant.pk)
        if Payment.objects.filter(idempotency_key=idempotency_key).exists():
            return credit_payment(
                participant=participant, amount=amount, kind=Kind.SURVEY, reason=wave, idempotency_key=idempotency_key
            )
        room = room_under_cap(participant)
        if room is not None and Decimal(amount) > room:
            record_audit(
                action="payment.capped",
                obj=participant,
                detail={"wave": wave, "asked": str(amount), "credited": str(room), "key": idempotency_key},
            )
            if room <= 0:
                return None
            amount = room
        return credit_payment(
            participant=participant,
            amount=amount,
            kind=Kind.SURVEY,
            reason=wave,
            idempotency_key=idempotency_key,
            at=at,
        )


def adjust_payment(*, participant: Participant, amount: Decimal, reason: str, idempotency_key: str, by: User) -> Credit:
    """A researcher's manual credit; the reason is required and recorded (shown to the participant)."""
    if not reason.strip():
        raise PaymentError("missing_reason", "Say why this adjustment is made.", "reason")
    return credit_payment(
        participant=participant,
        amount=amount,
        kind=Kind.ADJUSTMENT,
        reason=reason.strip(),
        idempotency_key=idempotency_key,
        by=by,
    )


def new_idempotency_key(prefix: str) -> str:
    return f"{prefix}:{secrets.token_hex(12)}"


# --- status moves --------------------------------------------------------------------------------


_STAMP: dict[str, str] = {Status.APPROVED: "approved_at", Status.PAID: "paid_at", Status.FAILED: "failed_at"}


def move_payments(
    *,
    payment_ids: Iterable[int],
    to: str,
    by: User,
    note: str = "",
    provider_reference: str = "",
    at: dt.datetime | None = None,
) -> list[Payment]:
    """Move each entry that may go to ``to`` (see ``Payment.TRANSITIONS``); the others stay. Returns the moved.

    Each row is claimed with a conditional update on its current status, so a concurrent move of the
    same row (two clicks, an import racing an admin action) happens once, with one audit event.
    """
    at = at or timezone.now()
    sources = [status for status, targets in Payment.TRANSITIONS.items() if to in targets]
    moved = []
    with transaction.atomic():
        candidates = Payment.objects.select_for_update().filter(pk__in=list(payment_ids), status__in=sources)
        for payment in candidates.select_related("participant").order_by("pk"):
            changes: dict[str, object] = {"status": to, "status_note": note[:300]}
            if to in _STAMP:
                changes[_STAMP[to]] = at
            if provider_reference:
                changes["provider_reference"] = provider_reference[:200]
            if to == Status.APPROVED:
                changes["batch"] = None  # a retried entry leaves its failed batch and goes out again
            if not Payment.objects.filter(pk=payment.pk, status=payment.status).update(**changes):
                continue
            record_audit(
                action=f"payment.{to}",
                obj=payment,
                actor=by,
                detail={"participant": payment.participant.public_id, "from": payment.status, "note": note},
            )
            moved.append(payment)
    return moved


# --- payout files --------------------------------------------------------------------------------

GIFT_CARD_HEADER = ("recipient_id", "email", "amount", "currency", "references")


def unaddressable(method: str) -> Q:
    """Entries a payout file cannot address: an erased participant's (the erasure blanked the vendor id and the
    email; only the vendor id's keyed hash is left, which Prolific cannot read), or, for a Prolific bonus, a
    participant without a Prolific id. They stay approved, out of every batch, to be paid by hand from the
    provider's own records and marked paid through the admin (audited like any other move)."""
    missing = Q(participant__erased_at__isnull=False)
    return missing | Q(participant__vendor_pid="") if method == PayoutMethod.PROLIFIC else missing


def export_payout_batch(*, study: Study, method: str, by: User, at: dt.datetime | None = None) -> PayoutBatch | None:
    """Put every approved, not yet exported entry of ``method`` into a new batch (None if there is none).

    Entries that cannot be addressed (``unaddressable``) are left out and counted in the audit event."""
    with transaction.atomic():
        waiting = Payment.objects.filter(
            participant__study=study, method=method, status=Status.APPROVED, batch__isnull=True
        ).exclude(participant__is_test=True)  # a researcher's test participant is never paid out
        ready = waiting.select_for_update(skip_locked=True, of=("self",)).exclude(unaddressable(method))
        ids = list(ready.values_list("pk", flat=True))
        if not ids:
            return None
        batch = PayoutBatch.objects.create(
            study=study, method=method, created_by=_user(by), created_at=at or timezone.now()
        )
        Payment.objects.filter(pk__in=ids).update(batch=batch)
        total = Payment.objects.filter(batch=batch).aggregate(total=Sum("amount"))["total"]
        left_out = waiting.filter(unaddressable(method)).count()
        record_audit(
            action="payments.exported",
            obj=batch,
            actor=by,
            detail={
                "method": method,
                "payments": len(ids),
                "total": str(total),
                "study": study.slug,
                "left_out_unaddressable": left_out,
            },
        )
    return batch


@dataclass(frozen=True)
class PayoutLine:
    """One recipient in a batch: all of their entries in it, paid together."""

    recipient_id: str
    email: str
    amount: Decimal
    currency: str
    payments: tuple[Payment, ...]


def recipient_id(payment: Payment, method: str) -> str:
    """Prolific knows its own participant id (the vendor id); a gift-card provider gets our pseudonymous id."""
    return payment.participant.vendor_pid if method == PayoutMethod.PROLIFIC else payment.participant.public_id


def payout_lines(batch: PayoutBatch) -> list[PayoutLine]:
    grouped: dict[str, list[Payment]] = defaultdict(list)
    for payment in batch.payments.select_related("participant").order_by("participant__public_id", "pk"):
        grouped[recipient_id(payment, batch.method)].append(payment)
    return [
        PayoutLine(
            recipient_id=rid,
            email=entries[0].participant.email,
            amount=sum((p.amount for p in entries), Decimal("0")),
            currency=entries[0].currency,
            payments=tuple(entries),
        )
        for rid, entries in grouped.items()
    ]


def payout_file(*, batch: PayoutBatch, by: User) -> str:
    """The batch as the provider wants it; every download is audited (the gift-card file holds emails).

    Prolific's bulk-bonus CSV is ``<participant_id>,<amount>`` with no header; the gift-card file has a
    header and our payment references, so the results file can be matched back.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    lines = payout_lines(batch)
    if batch.method == PayoutMethod.PROLIFIC:
        writer.writerows((line.recipient_id, line.amount) for line in lines)
    else:
        writer.writerow(GIFT_CARD_HEADER)
        for line in lines:
            refs = " ".join(p.reference for p in line.payments)
            writer.writerow((line.recipient_id, line.email, line.amount, line.currency, refs))
    record_audit(
        action="payments.export_downloaded",
        obj=batch,
        actor=by,
        detail={"method": batch.method, "lines": len(lines), "identifiable": batch.method == PayoutMethod.GIFT_CARD},
    )
    return out.getvalue()


# --- provider results ----------------------------------------------------------------------------

RESULT_COLUMNS = ("recipient_id", "status", "amount")
RESULT_STATUSES = {"paid": Status.PAID, "failed": Status.FAILED}


@dataclass
class ImportReport:
    paid: int = 0
    failed: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


def import_payout_results(*, batch: PayoutBatch, text: str, by: User) -> ImportReport:
    """Apply the provider's results for ``batch``: a CSV with ``recipient_id,status,amount`` and
    optional ``provider_reference,message`` columns.

    Each line is checked alone: an unknown recipient, an amount that differs from what the batch
    sent, or an unknown status is reported with its line number and changes nothing. A line already
    applied (the same file imported twice) is counted as unchanged.
    """
    report = ImportReport()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [c for c in RESULT_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        report.errors.append((1, f"missing column(s): {', '.join(missing)}"))
        return report
    lines = {line.recipient_id: line for line in payout_lines(batch)}
    for number, row in enumerate(reader, start=2):
        error = _apply_result(batch, lines, row, by, report)
        if error:
            report.errors.append((number, error))
    record_audit(
        action="payments.results_imported",
        obj=batch,
        actor=by,
        detail={
            "paid": report.paid,
            "failed": report.failed,
            "unchanged": report.unchanged,
            "errors": len(report.errors),
        },
    )
    return report


def _apply_result(
    batch: PayoutBatch, lines: dict[str, PayoutLine], row: dict[str, str], by: User, report: ImportReport
) -> str:
    rid = (row.get("recipient_id") or "").strip()
    line = lines.get(rid)
    if line is None:
        return f"recipient {rid!r} is not in batch {batch.pk}"
    status = RESULT_STATUSES.get((row.get("status") or "").strip().lower())
    if status is None:
        return f"status {row.get('status')!r} is not 'paid' or 'failed'"
    try:
        amount = Decimal((row.get("amount") or "").strip()).quantize(CENT)
    except InvalidOperation:
        return f"amount {row.get('amount')!r} is not a number"
    if amount != line.amount:
        return f"amount {amount} does not match the {line.amount} sent to {rid}"
    ids = [p.pk for p in line.payments]
    if Payment.objects.filter(pk__in=ids, status=status).count() == len(ids):
        report.unchanged += 1
        return ""
    moved = move_payments(
        payment_ids=ids,
        to=status,
        by=by,
        note=(row.get("message") or "").strip(),
        provider_reference=(row.get("provider_reference") or "").strip(),
    )
    if len(moved) != len(ids):
        return f"{rid}: {len(ids) - len(moved)} entr(y/ies) could not become {status}"
    if status == Status.PAID:
        report.paid += 1
    else:
        report.failed += 1
    return ""


# --- lottery -------------------------------------------------------------------------------------


def lottery_eligible(*, study: Study, enrolled_before: dt.datetime | None = None) -> list[str]:
    """Public ids of those who may win: included, not withdrawn, extension still installed; sorted."""
    people = Participant.objects.real().filter(study=study).enrolled().included()
    people = people.filter(installs__uninstalled_at__isnull=True)
    if enrolled_before is not None:
        people = people.filter(enrolled_at__lt=enrolled_before)
    return sorted(set(people.values_list("public_id", flat=True)))


def run_lottery(
    *,
    study: Study,
    name: str,
    prize: Decimal,
    winners_count: int,
    by: User,
    seed: str = "",
    enrolled_before: dt.datetime | None = None,
    at: dt.datetime | None = None,
) -> LotteryDraw:
    """Draw the winners, record the draw (seed, eligible ids, winners) and owe each winner the prize.

    Anyone can redo the draw from the record with ``participants.lottery.draw_winners``.
    """
    seed = seed or secrets.token_hex(16)
    with transaction.atomic():
        eligible = lottery_eligible(study=study, enrolled_before=enrolled_before)
        winners = draw_winners(seed, eligible, winners_count)
        draw = LotteryDraw.objects.create(
            study=study,
            name=name,
            prize=prize,
            winners_count=winners_count,
            seed=seed,
            enrolled_before=enrolled_before,
            eligible=eligible,
            winners=winners,
            drawn_at=at or timezone.now(),
            drawn_by=_user(by),
        )
        record_audit(
            action="lottery.drawn",
            obj=draw,
            actor=by,
            detail={"seed": seed, "eligible": len(eligible), "winners": winners, "prize": str(prize)},
        )
        for winner in Participant.objects.filter(study=study, public_id__in=winners):
            credit_payment(
                participant=winner,
                amount=prize,
                kind=Kind.LOTTERY,
                reason=name,
                idempotency_key=f"lottery:{draw.pk}:{winner.public_id}",
                by=by,
            )
    return draw


def _user(by: User) -> DjangoUser | None:
    return by if isinstance(by, DjangoUser) else None


# --- what the participant sees -------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentSummary:
    entries: list[Payment]
    earned: Decimal
    paid: Decimal
    waiting: Decimal
    next_expected: dt.date | None  # when the oldest unpaid entry should arrive; None if nothing is waiting


def payment_summary(participant: Participant) -> PaymentSummary:
    """What the status page shows: everything earned (cancelled entries left out), what was paid, and
    when the next payment is expected (the oldest unpaid entry plus the study's ``payout_days``)."""
    entries = list(participant.payments.counted().order_by("created_at", "pk"))
    unpaid = [p for p in entries if p.status != Status.PAID]
    paid = sum((p.amount for p in entries if p.status == Status.PAID), Decimal("0"))
    earned = sum((p.amount for p in entries), Decimal("0"))
    next_expected = None
    if unpaid:
        oldest = min(p.created_at for p in unpaid)
        next_expected = timezone.localdate(oldest + dt.timedelta(days=participant.study.payout_days))
    return PaymentSummary(entries, earned, paid, earned - paid, next_expected)
