"""The payments ledger: credits, caps, audited moves, payout files and results, lottery, status page."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError, transaction
from django.test import Client
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from participants import payments
from participants.lottery import draw_winners
from participants.models import (
    AuditEvent,
    ExtensionInstall,
    LotteryDraw,
    Participant,
    Payment,
    PayoutBatch,
    Study,
    sha256_hex,
)
from participants.roles import OPS, PI, READER, create_roles
from participants.services import erase_participant_data
from tests.factories import ParticipantFactory, SourceFactory, StudyFactory, login
from tests.threads import run_at_once

pytestmark = pytest.mark.django_db

PAYMENTS = "/research/payments/"
Status = Payment.Status


@pytest.fixture(autouse=True)
def roles() -> dict[str, Group]:
    return create_roles()


@pytest.fixture
def study() -> Study:
    return StudyFactory(status=Study.Status.RUNNING, payment_cap=Decimal("20.00"), payout_days=30)


def person(study: Study, *, included: bool = True, installed: bool = True, **kwargs: Any) -> Participant:
    now = timezone.now()
    participant: Participant = ParticipantFactory(
        study=study,
        consented_at=now - dt.timedelta(days=60),
        enrolled_at=now - dt.timedelta(days=59),
        included_at=now - dt.timedelta(days=52) if included else None,
        stage=Participant.Stage.ENROLLED,
        **kwargs,
    )
    ExtensionInstall.objects.create(
        participant=participant,
        install_key=f"install-{participant.public_id}",
        token_hash=f"hash-{participant.public_id}",
        uninstalled_at=None if installed else now,
    )
    return participant


def owe(participant: Participant, amount: str = "5.00", key: str = "") -> Payment:
    credit = payments.credit_survey_payment(
        participant=participant, amount=Decimal(amount), wave="Midline survey", idempotency_key=key or f"k-{amount}"
    )
    assert credit is not None
    return credit.payment


def admin_action(client: Client, action: str, rows: list[Payment]) -> Any:
    data = {"action": action, "_selected_action": [p.pk for p in rows]}
    return client.post("/admin/participants/payment/", data, follow=True)


# --- credits, idempotency, caps -------------------------------------------------------------------


def test_a_repeated_survey_credit_returns_the_first_entry(study: Study) -> None:
    participant = person(study)

    first = payments.credit_survey_payment(
        participant=participant, amount=Decimal("5"), wave="Midline survey", idempotency_key="wave:1:p"
    )
    again = payments.credit_survey_payment(
        participant=participant, amount=Decimal("7"), wave="Midline survey", idempotency_key="wave:1:p"
    )

    assert first is not None
    assert again is not None
    assert first.created
    assert not again.created
    assert again.payment.pk == first.payment.pk
    assert Payment.objects.get().amount == Decimal("5.00")
    assert Payment.objects.get().status == Status.OWED
    assert AuditEvent.objects.filter(action="payment.credited").count() == 1


def test_a_key_used_for_another_participant_is_refused(study: Study) -> None:
    owe(person(study), key="shared")
    with pytest.raises(payments.PaymentError) as refused:
        owe(person(study), key="shared")
    assert refused.value.code == "key_conflict"


def test_a_survey_credit_is_trimmed_at_the_cap_and_skipped_when_nothing_is_left(study: Study) -> None:
    participant = person(study)
    owe(participant, "15.00", key="a")

    trimmed = payments.credit_survey_payment(
        participant=participant, amount=Decimal("10"), wave="Endline survey", idempotency_key="b"
    )
    nothing = payments.credit_survey_payment(
        participant=participant, amount=Decimal("5"), wave="Bonus wave", idempotency_key="c"
    )

    assert trimmed is not None
    assert trimmed.payment.amount == Decimal("5.00")
    assert nothing is None
    assert sum(p.amount for p in Payment.objects.all()) == study.payment_cap
    capped = AuditEvent.objects.filter(action="payment.capped").order_by("id")
    assert [(e.detail["asked"], e.detail["credited"]) for e in capped] == [("10", "5.00"), ("5", "0.00")]


def test_cancelled_entries_free_room_under_the_cap_and_lottery_prizes_do_not_use_it(study: Study) -> None:
    participant = person(study)
    entry = owe(participant, "20.00", key="a")
    payments.credit_payment(
        participant=participant, amount=Decimal("500"), kind="lottery", reason="Lottery", idempotency_key="l"
    )
    assert payments.room_under_cap(participant) == Decimal("0")

    payments.move_payments(payment_ids=[entry.pk], to=Status.CANCELLED, by=None, note="duplicate")

    assert payments.room_under_cap(participant) == Decimal("20.00")


@pytest.mark.django_db(transaction=True)
def test_concurrent_credits_with_one_key_create_one_entry() -> None:
    participant = person(StudyFactory(status=Study.Status.RUNNING))

    credits = run_at_once(
        8,
        lambda i: payments.credit_survey_payment(
            participant=participant, amount=Decimal("5"), wave="Midline survey", idempotency_key="wave:2:same"
        ),
    )

    assert Payment.objects.count() == 1
    assert sum(c.created for c in credits if isinstance(c, payments.Credit)) == 1
    assert {c.payment.pk for c in credits if isinstance(c, payments.Credit)} == {Payment.objects.get().pk}


@pytest.mark.django_db(transaction=True)
def test_concurrent_credits_with_different_keys_never_pass_the_cap() -> None:
    participant = person(StudyFactory(status=Study.Status.RUNNING, payment_cap=Decimal("10.00")))

    run_at_once(
        6,
        lambda i: payments.credit_survey_payment(
            participant=participant, amount=Decimal("4"), wave=f"Wave {i}", idempotency_key=f"wave:{i}"
        ),
    )

    assert sum(p.amount for p in Payment.objects.all()) == Decimal("10.00")
    assert sorted(p.amount for p in Payment.objects.all()) == [Decimal("2.00"), Decimal("4.00"), Decimal("4.00")]


@pytest.mark.django_db(transaction=True)
def test_concurrent_paid_marks_move_an_entry_once() -> None:
    entry = owe(person(StudyFactory(status=Study.Status.RUNNING)))
    payments.move_payments(payment_ids=[entry.pk], to=Status.APPROVED, by=None)

    moved = run_at_once(5, lambda i: payments.move_payments(payment_ids=[entry.pk], to=Status.PAID, by=None))

    assert sum(len(m) for m in moved if isinstance(m, list)) == 1
    assert AuditEvent.objects.filter(action="payment.paid").count() == 1


def test_the_database_refuses_to_change_a_paid_entry_or_its_amount(study: Study) -> None:
    entry = owe(person(study))
    payments.move_payments(payment_ids=[entry.pk], to=Status.APPROVED, by=None)
    payments.move_payments(payment_ids=[entry.pk], to=Status.PAID, by=None)

    with pytest.raises(DatabaseError), transaction.atomic():
        Payment.objects.filter(pk=entry.pk).update(status=Status.APPROVED)
    with pytest.raises(DatabaseError), transaction.atomic():
        Payment.objects.filter(pk=entry.pk).update(amount=Decimal("50"))
    with pytest.raises(DatabaseError), transaction.atomic():
        Payment.objects.filter(pk=entry.pk).delete()
    assert Payment.objects.get().status == Status.PAID


# --- the admin ------------------------------------------------------------------------------------


def test_admin_actions_move_entries_through_the_audited_service(study: Study) -> None:
    ops = login("ops", OPS)
    owed, other = owe(person(study), key="a"), owe(person(study), key="b")

    page = admin_action(ops, "mark_paid", [owed]).content.decode()
    assert "0 payment(s) now paid. 1 skipped" in page  # owed entries are approved first
    admin_action(ops, "approve", [owed, other])
    page = admin_action(ops, "mark_paid", [owed]).content.decode()
    assert "1 payment(s) now paid." in page

    owed.refresh_from_db()
    assert owed.status == Status.PAID
    assert owed.paid_at is not None
    assert owed.approved_at is not None
    events = AuditEvent.objects.filter(object_type="Payment", object_id=str(owed.pk)).order_by("id")
    assert [(e.action, e.actor_label, e.detail.get("from")) for e in events] == [
        ("payment.credited", "system", None),
        ("payment.approved", "ops", "owed"),
        ("payment.paid", "ops", "approved"),
    ]
    assert "1 skipped" in admin_action(ops, "cancel", [owed, other]).content.decode()
    assert Payment.objects.get(pk=other.pk).status == Status.CANCELLED


def test_a_read_only_researcher_cannot_move_entries(study: Study) -> None:
    entry = owe(person(study))
    reader = login("reader", READER)

    admin_action(reader, "approve", [entry])

    assert Payment.objects.get().status == Status.OWED


def adjustment_form(participant: Participant, **overrides: str) -> dict[str, str]:
    return {"participant": str(participant.pk), "amount": "3.50", "reason": "Helped test the extension"} | {
        "idempotency_key": "adjustment:form-1",
        **overrides,
    }


def test_a_manual_adjustment_needs_a_reason_and_is_credited_once_and_audited(study: Study) -> None:
    pi = login("pi", PI)
    participant = person(study)

    missing = pi.post("/admin/participants/payment/add/", adjustment_form(participant, reason=""))
    assert missing.status_code == 200
    assert "This field is required" in missing.content.decode()
    assert not Payment.objects.exists()

    assert pi.post("/admin/participants/payment/add/", adjustment_form(participant)).status_code == 302
    assert pi.post("/admin/participants/payment/add/", adjustment_form(participant)).status_code == 302  # resubmit

    entry = Payment.objects.get()
    assert (entry.kind, entry.amount, entry.reason) == ("adjustment", Decimal("3.50"), "Helped test the extension")
    event = AuditEvent.objects.get(action="payment.credited")
    assert event.actor_label == "pi"
    assert event.detail["reason"] == "Helped test the extension"


def test_an_adjustment_over_the_cap_shows_the_error_next_to_the_amount(study: Study) -> None:
    pi = login("pi", PI)
    participant = person(study)
    owe(participant, "18.00")

    page = pi.post("/admin/participants/payment/add/", adjustment_form(participant)).content.decode()

    assert "at most 2.00 more can be credited" in page
    assert Payment.objects.count() == 1


# --- payout files and results ---------------------------------------------------------------------


def approved_entries(study: Study, n: int, **person_kwargs: Any) -> list[Payment]:
    entries = [owe(person(study, **person_kwargs), key=f"{study.pk}-{i}-{person_kwargs}") for i in range(n)]
    payments.move_payments(payment_ids=[p.pk for p in entries], to=Status.APPROVED, by=None)
    return entries


def export(client: Client, study: Study, method: str) -> Any:
    return client.post("/research/payments/export/", {"study": study.slug, "method": method})


def test_a_gift_card_export_batches_approved_entries_once_and_is_audited(study: Study) -> None:
    ops = login("ops", OPS)
    entries = approved_entries(study, 2)
    owe(person(study), key="still-owed")
    Participant.objects.filter(pk=entries[0].participant_id).update(email="one@example.org")

    response = export(ops, study, "gift_card")

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="payout-')
    lines = response.content.decode().splitlines()
    assert lines[0] == "recipient_id,email,amount,currency,references"
    assert f"{entries[0].participant.public_id},one@example.org,5.00,USD,pay-{entries[0].pk}" in lines
    assert len(lines) == 3  # the owed entry is not paid out
    batch = PayoutBatch.objects.get()
    assert set(batch.payments.values_list("pk", flat=True)) == {p.pk for p in entries}
    assert AuditEvent.objects.filter(action="payments.exported", actor_label="ops").get().detail["payments"] == 2
    assert AuditEvent.objects.filter(action="payments.export_downloaded").count() == 1

    again = export(ops, study, "gift_card")
    assert again.status_code == 302  # nothing new to pay: the same entries never go out twice
    assert PayoutBatch.objects.count() == 1


def test_a_prolific_export_is_a_bonus_file_with_one_line_per_participant(study: Study) -> None:
    prolific = SourceFactory(study=study, payout_method="prolific")
    participant = person(study, source=prolific, vendor_pid="5f1e0000000000000000abcd")
    for key in ("mid", "end"):
        owe(participant, key=key)
    payments.move_payments(payment_ids=Payment.objects.values_list("pk", flat=True), to=Status.APPROVED, by=None)

    response = export(login("pi", PI), study, "prolific")

    assert response.content.decode() == "5f1e0000000000000000abcd,10.00\n"


def test_an_erased_prolific_participant_is_left_out_of_the_bonus_file_and_stays_approved(study: Study) -> None:
    prolific = SourceFactory(study=study, payout_method="prolific")
    kept = person(study, source=prolific, vendor_pid="5f1e000000000000000000aa")
    erased = person(study, source=prolific, vendor_pid="5f1e000000000000000000bb")
    owe(kept, key="kept")
    left = owe(erased, key="erased")
    payments.move_payments(payment_ids=Payment.objects.values_list("pk", flat=True), to=Status.APPROVED, by=None)
    with transaction.atomic():
        erase_participant_data(participant=erased)  # only the keyed hash of the Prolific id is left

    response = export(login("pi", PI), study, "prolific")

    assert response.content.decode() == "5f1e000000000000000000aa,5.00\n"
    left.refresh_from_db()
    assert (left.status, left.batch_id) == (Status.APPROVED, None)
    assert AuditEvent.objects.get(action="payments.exported").detail["left_out_unaddressable"] == 1
    assert export(login("pi2", PI), study, "prolific").status_code == 302  # nothing it can address is left


def test_readers_cannot_export_or_import_payouts(study: Study) -> None:
    approved_entries(study, 1)
    reader = login("reader", READER)

    assert export(reader, study, "gift_card").status_code == 403
    assert not PayoutBatch.objects.exists()
    assert "Exports and result imports are for the PI" in reader.get(PAYMENTS).content.decode()


def upload(client: Client, batch: PayoutBatch, text: str) -> Any:
    file = SimpleUploadedFile("results.csv", text.encode(), content_type="text/csv")
    return client.post(f"/research/payments/batches/{batch.pk}/results/", {"results": file})


def test_importing_results_pays_good_lines_and_reports_each_bad_line(study: Study) -> None:
    ops = login("ops", OPS)
    good, failed, wrong_amount = approved_entries(study, 3)
    export(ops, study, "gift_card")
    batch = PayoutBatch.objects.get()
    ids = [p.participant.public_id for p in (good, failed, wrong_amount)]
    text = (
        "recipient_id,status,amount,provider_reference,message\n"
        f"{ids[0]},paid,5.00,GC-1,\n"
        f"{ids[1]},failed,5.00,,mailbox full\n"
        f"{ids[2]},paid,50.00,GC-3,\n"
        "p_unknown,paid,5.00,GC-4,\n"
    )

    response = upload(ops, batch, text)

    assert response.status_code == 400
    page = response.content.decode()
    assert "1 paid, 1 failed, 0 already recorded, 2 line(s) with errors" in page
    assert "Line 4: amount 50.00 does not match the 5.00 sent to" in page
    assert "Line 5: recipient &#x27;p_unknown&#x27; is not in batch" in page
    statuses = {p.pk: (p.status, p.provider_reference, p.status_note) for p in Payment.objects.all()}
    assert statuses[good.pk] == (Status.PAID, "GC-1", "")
    assert statuses[failed.pk] == (Status.FAILED, "", "mailbox full")
    assert statuses[wrong_amount.pk][0] == Status.APPROVED

    again = upload(ops, batch, text.replace(f"{ids[2]},paid,50.00", f"{ids[2]},paid,5.00"))
    assert "1 paid, 0 failed, 2 already recorded, 1 line(s) with errors" in again.content.decode()
    assert AuditEvent.objects.filter(action="payment.paid").count() == 2


def test_a_failed_entry_approved_again_goes_out_in_a_new_batch(study: Study) -> None:
    ops = login("ops", OPS)
    (entry,) = approved_entries(study, 1)
    export(ops, study, "gift_card")
    upload(ops, PayoutBatch.objects.get(), f"recipient_id,status,amount\n{entry.participant.public_id},failed,5\n")

    admin_action(ops, "approve", [entry])
    export(ops, study, "gift_card")

    entry.refresh_from_db()
    assert PayoutBatch.objects.count() == 2
    assert entry.batch == PayoutBatch.objects.order_by("-pk").first()


def test_the_payments_page_counts_entries_per_kind_and_status(study: Study) -> None:
    approved_entries(study, 2)
    owe(person(study), "3.00", key="owed")

    page = login("reader", READER).get(f"{PAYMENTS}?study={study.slug}").content.decode()

    assert (
        '<tr><td>Survey completed</td><td>1</td><td class="conv">3.00</td><td>2</td><td class="conv">10.00</td>' in page
    )


# --- lottery --------------------------------------------------------------------------------------


@settings(deadline=None)  # a pure function; a loaded CI machine must not fail it on time
@given(
    seed=st.text(min_size=1, max_size=20),
    ids=st.lists(st.from_regex(r"p_[0-9a-f]{4}", fullmatch=True), max_size=30, unique=True),
    count=st.integers(min_value=0, max_value=10),
)
def test_a_draw_depends_only_on_the_seed_and_the_set_of_eligible_ids(seed: str, ids: list[str], count: int) -> None:
    winners = draw_winners(seed, ids, count)

    assert winners == draw_winners(seed, list(reversed(ids)), count)
    assert len(winners) == min(count, len(ids))
    assert set(winners) <= set(ids)
    assert len(set(winners)) == len(winners)


def test_different_seeds_pick_different_winners() -> None:
    ids = [f"p_{i:04d}" for i in range(200)]
    assert len({tuple(draw_winners(str(seed), ids, 3)) for seed in range(20)}) > 15


def test_a_pi_runs_a_recorded_reproducible_lottery_among_eligible_participants(study: Study) -> None:
    eligible = [person(study) for _ in range(5)]
    person(study, included=False)
    person(study, installed=False)
    person(study, withdrawn_at=timezone.now())
    pi = login("pi", PI)

    response = pi.post(
        "/admin/participants/lotterydraw/add/",
        {"study": study.pk, "name": "Five-month lottery", "prize": "500", "winners_count": "2", "seed": "s33d"},
    )

    assert response.status_code == 302
    draw = LotteryDraw.objects.get()
    assert draw.eligible == sorted(p.public_id for p in eligible)
    assert draw.winners == draw_winners("s33d", draw.eligible, 2)
    prizes = Payment.objects.filter(kind="lottery")
    assert sorted(p.participant.public_id for p in prizes) == sorted(draw.winners)
    assert {p.amount for p in prizes} == {Decimal("500.00")}
    event = AuditEvent.objects.get(action="lottery.drawn")
    assert (event.actor_label, event.detail["seed"], event.detail["eligible"]) == ("pi", "s33d", 5)
    assert pi.get(f"/admin/participants/lotterydraw/{draw.pk}/change/").status_code == 200
    assert "Five-month lottery" in login("reader", READER).get(f"{PAYMENTS}?study={study.slug}").content.decode()


def test_operations_staff_cannot_run_a_lottery(study: Study) -> None:
    person(study)
    response = login("ops", OPS).post(
        "/admin/participants/lotterydraw/add/",
        {"study": study.pk, "name": "Lottery", "prize": "500", "winners_count": "1"},
    )
    assert response.status_code == 403
    assert not LotteryDraw.objects.exists()


# --- the participant's status page ----------------------------------------------------------------


def test_the_status_page_shows_earned_paid_and_when_the_next_payment_is_expected(study: Study, client: Client) -> None:
    participant = person(study)
    key = "status-key-123"
    Participant.objects.filter(pk=participant.pk).update(status_key_hash=sha256_hex(key))
    paid, owed = owe(participant, key="mid"), owe(participant, key="end")
    payments.move_payments(payment_ids=[paid.pk], to=Status.APPROVED, by=None)
    payments.move_payments(payment_ids=[paid.pk], to=Status.PAID, by=None)
    Payment.objects.filter(pk=owed.pk).update(created_at=dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC))

    page = client.get(f"/p/{key}/").content.decode()

    assert "<dt>Earned so far</dt><dd>$10.00</dd>" in page
    assert "<dt>Paid to you</dt><dd>$5.00</dd>" in page
    assert "<dt>Next payment expected by</dt><dd>31 March 2026</dd>" in page
    assert "Paid on" in page
    assert "Earned, awaiting approval" in page
