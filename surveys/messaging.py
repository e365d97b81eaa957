"""Invitations, reminders and monthly updates: the survey schedule, re-evaluated on a timer.

``run_schedule(at=...)`` is the whole job (Celery beat runs it; ``manage.py run_survey_schedule`` runs
it by hand):

1. ``create_invitations``: for every active wave, the participants in its target population whose
   window is open get an invitation row (per wave: one query for the signup days, one ``INSERT … SELECT``).
2. ``expire_invitations``: invitations whose window has closed stop waiting (one update).
3. ``claim_due`` and ``send_claimed``: invitations never sent, and reminders whose time has come, are
   claimed under row locks (``SKIP LOCKED``, so a completion being recorded is never reminded and two
   runs never send the same message) and advanced in one ``UPDATE … RETURNING``, and only then emailed;
   every attempt is written to ``MessageLog`` under a unique key, so a rerun never sends a message twice.

Withdrawn participants are excluded by every query, and their pending invitations are cancelled when
``participant_withdrawn`` arrives (``cancel_for_withdrawal``). Nothing here loops over participants
with a query each: the work is a fixed number of queries per wave plus one email per message.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import zoneinfo
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.template.loader import get_template
from django.urls import reverse

from participants.models import Participant
from surveys.models import Invitation, MessageLog, Wave
from surveys.services import survey_token

logger = logging.getLogger(__name__)

Kind = MessageLog.Kind
BATCH = 5000
PAID = ("paid",)
NOT_OWED = ("paid", "cancelled", "failed")


# --- 1. Invitations --------------------------------------------------------------------------------


def _target_filter(wave: Wave) -> Q:
    if wave.target == Wave.Target.INCLUDED:
        return Q(included_at__isnull=False)
    if wave.target == Wave.Target.INSTALLED:
        return Q(enrolled_at__isnull=False)
    return Q()


def create_invitations(*, at: dt.datetime) -> int:
    """Invite everyone in each active wave's target whose window is open at ``at``; returns rows created.

    Two statements per wave, whatever the number of people: the study-local signup days of those not yet
    invited, then one ``INSERT … SELECT`` of everyone in the target who signed up on a day whose window
    (``Wave.window_on``, the one rule, computed here once per day) is open. The insert leaves "not yet
    invited" to the unique constraint (``ON CONFLICT DO NOTHING``): an anti-join reading the table it
    inserts into could rescan the rows it adds, once per participant.
    """
    created = 0
    for wave in Wave.objects.filter(active=True).select_related("study"):
        if (wave.opens_at is not None and wave.opens_at > at) or (wave.closes_at is not None and wave.closes_at <= at):
            continue
        people = (
            Participant.objects.filter(study_id=wave.study_id, consented_at__isnull=False, withdrawn_at__isnull=True)
            .filter(_target_filter(wave))
            .annotate(signup_day=TruncDate("consented_at", tzinfo=zoneinfo.ZoneInfo(wave.study.timezone)))
        )
        waiting = people.exclude(survey_invitations__wave=wave).values_list("signup_day", flat=True)
        windows = {day: wave.window_on(day) for day in waiting.distinct().order_by()}
        open_days = {
            day: (opens, closes)
            for day, (opens, closes) in windows.items()
            if (opens is None or opens <= at) and (closes is None or at < closes)
        }
        if open_days:
            created += _insert_invitations(wave, people.values("pk", "consented_at", "signup_day"), open_days, at)
    return created


def _insert_invitations(
    wave: Wave,
    people: QuerySet[Any],
    windows: dict[dt.date, tuple[dt.datetime | None, dt.datetime | None]],
    at: dt.datetime,
) -> int:
    days = sorted(windows)
    select, params = people.query.sql_with_params()
    sql = f"""
        INSERT INTO surveys_invitation
            (participant_id, wave_id, opens_at, closes_at, created_at,
             reminders_sent, reminders_cancelled, cancel_reason)
        SELECT p.id, %s, COALESCE(w.opens, p.consented_at), w.closes, %s, 0, 0, ''
        FROM ({select}) AS p (id, consented_at, signup_day)
        JOIN unnest(%s::date[], %s::timestamptz[], %s::timestamptz[]) AS w (day, opens, closes) ON w.day = p.signup_day
        WHERE COALESCE(w.opens, p.consented_at) <= %s
        ON CONFLICT DO NOTHING
    """  # noqa: S608 (the inner SELECT is Django's, its values are parameters)
    opens, closes = [windows[day][0] for day in days], [windows[day][1] for day in days]
    with connection.cursor() as cursor:
        cursor.execute(sql, [wave.pk, at, *params, days, opens, closes, at])
        return cursor.rowcount


def expire_invitations(*, at: dt.datetime) -> int:
    return Invitation.objects.awaiting().filter(closes_at__lte=at).update(expired_at=at, next_reminder_at=None)


# --- 2. Sending ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    invitation_id: int
    participant_id: int
    wave_id: int
    kind: str
    number: int  # 0 for the invitation, n for the n-th reminder


def _due(at: dt.datetime) -> Q:
    waiting = Q(invited_at__isnull=True) | Q(next_reminder_at__lte=at, reminders_sent__lt=F("wave__max_reminders"))
    window = Q(opens_at__lte=at) & (Q(closes_at__isnull=True) | Q(closes_at__gt=at))
    return waiting & window & Q(participant__withdrawn_at__isnull=True)


def claim_due(*, at: dt.datetime) -> list[Claimed]:
    """Advance every due invitation and reminder; what this call claimed, to send.

    One statement: the due rows are locked (``SKIP LOCKED``: rows a completion or another run holds are
    left alone) and advanced in the same ``UPDATE … RETURNING``. The next reminder is due
    ``reminder_interval_days`` (whole 24-hour days, as ``timedelta``) after this send, unless the wave's
    ``max_reminders`` have now gone out.
    """
    with transaction.atomic():
        due = (
            Invitation.objects.awaiting()
            .filter(_due(at))
            .select_for_update(skip_locked=True, of=("self",))
            .values("pk", "invited_at", "reminders_sent")
        )
        select, params = due.query.sql_with_params()
        sql = f"""
            UPDATE surveys_invitation AS i SET
                invited_at = COALESCE(i.invited_at, %s),
                last_sent_at = %s,
                reminders_sent = d.sent_after,
                next_reminder_at = CASE WHEN d.sent_after >= w.max_reminders THEN NULL
                    ELSE %s + make_interval(hours => 24 * w.reminder_interval_days) END
            FROM (
                SELECT id, invited_at IS NULL AS first,
                       CASE WHEN invited_at IS NULL THEN reminders_sent ELSE reminders_sent + 1 END AS sent_after
                FROM ({select}) AS locked (id, invited_at, reminders_sent)
            ) AS d, surveys_wave AS w
            WHERE i.id = d.id AND w.id = i.wave_id
            RETURNING i.id, i.participant_id, i.wave_id, d.first, d.sent_after
        """  # noqa: S608 (the inner SELECT is Django's, its values are parameters)
        with connection.cursor() as cursor:
            cursor.execute(sql, [at, at, at, *params])
            rows = cursor.fetchall()
    return [
        Claimed(pk, participant, wave, Kind.INVITATION if first else Kind.REMINDER, 0 if first else sent)
        for pk, participant, wave, first, sent in sorted(rows)
    ]


@functools.cache
def _page_path_template() -> str:
    return reverse("surveys:page", kwargs={"token": "TOKEN"})  # reversed once: a send run builds many links


def survey_url(invitation_id: int, base_url: str | None = None) -> str:
    path = _page_path_template().replace("TOKEN", survey_token(Invitation(pk=invitation_id)))
    return (settings.PRC_SITE_URL if base_url is None else base_url).rstrip("/") + path


def send_claimed(claimed: Sequence[Claimed], *, at: dt.datetime) -> dict[str, int]:
    """Email what ``claim_due`` claimed and log every attempt; counts by status."""
    if not claimed:
        return {}
    emails = dict(Participant.objects.filter(pk__in={c.participant_id for c in claimed}).values_list("pk", "email"))
    waves = {w.pk: w for w in Wave.objects.filter(pk__in={c.wave_id for c in claimed})}
    invitations = {
        i.pk: i for i in Invitation.objects.filter(pk__in=[c.invitation_id for c in claimed]).only("pk", "closes_at")
    }
    connection, template = get_connection(), get_template("surveys/email_invitation.txt")
    logs: list[MessageLog] = []
    counts: defaultdict[str, int] = defaultdict(int)
    for claim in claimed:
        wave, address = waves[claim.wave_id], emails.get(claim.participant_id, "")
        context = {
            "wave": wave,
            "url": survey_url(claim.invitation_id),
            "reminder": claim.kind == Kind.REMINDER,
            "closes_at": invitations[claim.invitation_id].closes_at,
        }
        subject = f"{'Reminder: ' if context['reminder'] else ''}{wave.name} is open for you"
        status, error = _send(connection, address, subject, template.render(context))
        counts[status] += 1
        logs.append(
            MessageLog(
                participant_id=claim.participant_id,
                wave=wave,
                kind=claim.kind,
                channel=MessageLog.Channel.EMAIL,
                status=status,
                key=f"{claim.kind}:{claim.invitation_id}:{claim.number}",
                subject=subject,
                error=error,
                at=at,
            )
        )
    MessageLog.objects.bulk_create(logs, batch_size=BATCH, ignore_conflicts=True)
    return dict(counts)


def _send(connection: Any, address: str, subject: str, body: str) -> tuple[str, str]:
    if not address:
        return MessageLog.Status.SKIPPED, ""
    try:
        EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [address], connection=connection).send()
    except Exception as exc:
        logger.warning("survey email failed: %s", type(exc).__name__)
        return MessageLog.Status.FAILED, type(exc).__name__[:300]
    return MessageLog.Status.SENT, ""


def run_schedule(*, at: dt.datetime) -> dict[str, int]:
    """The whole periodic job; returns what it did (for the command's output and the task's log)."""
    created = create_invitations(at=at)
    expired = expire_invitations(at=at)
    sent = send_claimed(claim_due(at=at), at=at)
    return {"invitations_created": created, "expired": expired, **{f"emails_{k}": v for k, v in sent.items()}}


# --- Withdrawal ------------------------------------------------------------------------------------


def cancel_for_withdrawal(*, participant: Participant, at: dt.datetime) -> int:
    """Stop every pending invitation and reminder of a withdrawn participant."""
    with transaction.atomic():
        pending = Invitation.objects.awaiting().filter(participant=participant).select_for_update()
        count = 0
        for invitation in pending.select_related("wave"):
            left = max(invitation.wave.max_reminders - invitation.reminders_sent, 0) if invitation.invited_at else 0
            count += Invitation.objects.filter(pk=invitation.pk).update(
                cancelled_at=at, cancel_reason="withdrawn", next_reminder_at=None, reminders_cancelled=left
            )
    return count


def erase_answers(*, participant: Participant) -> dict[str, int]:
    """Delete a participant's survey responses and in-feed answers (a withdrawal under delete terms)."""
    responses, _ = participant.survey_responses.all().delete()
    prompts, _ = participant.in_feed_prompts.all().delete()
    return {"survey_responses": responses, "in_feed_prompts": prompts}


# --- The extension's flag --------------------------------------------------------------------------


def extension_flags(*, participant: Participant, at: dt.datetime, base_url: str) -> list[dict[str, Any]]:
    """Open surveys the extension should point the participant to; each showing is logged once per reminder."""
    if participant.is_withdrawn:
        return []
    open_now = (
        Invitation.objects.awaiting()
        .filter(participant=participant, opens_at__lte=at)
        .filter(Q(closes_at__isnull=True) | Q(closes_at__gt=at))
        .select_related("wave")
    )
    rows, logs = [], []
    for invitation in open_now:
        rows.append(
            {
                "wave": invitation.wave.slug,
                "name": invitation.wave.name,
                "url": survey_url(invitation.pk, base_url),
                "closes_at": invitation.closes_at,
                "reminder": invitation.reminders_sent > 0,
            }
        )
        kind = Kind.REMINDER if invitation.reminders_sent else Kind.INVITATION
        logs.append(
            MessageLog(
                participant=participant,
                wave=invitation.wave,
                kind=kind,
                channel=MessageLog.Channel.EXTENSION,
                status=MessageLog.Status.SENT,
                key=f"ext:{invitation.pk}:{invitation.reminders_sent}",
                at=at,
            )
        )
    MessageLog.objects.bulk_create(logs, ignore_conflicts=True)
    return rows


# --- Next survey and monthly updates ---------------------------------------------------------------


@dataclass(frozen=True)
class NextSurvey:
    name: str
    opens_at: dt.datetime
    closes_at: dt.datetime | None
    url: str | None  # set while the participant's invitation is open
    payment: Decimal


def next_wave(
    waves: Sequence[Wave], signup_at: dt.datetime, done_wave_ids: set[int], at: dt.datetime
) -> tuple[Wave, dt.datetime, dt.datetime | None] | None:
    """The earliest wave not yet completed whose window for this participant has not closed."""
    upcoming = []
    for wave in waves:
        if wave.pk in done_wave_ids or not wave.active:
            continue
        opens, closes = wave.window_for(signup_at)
        if closes is None or closes > at:
            upcoming.append((opens, wave.pk, wave, closes))
    if not upcoming:
        return None
    opens, _, wave, closes = min(upcoming, key=lambda row: (row[0], row[1]))
    return wave, opens, closes


def next_survey(*, participant: Participant, at: dt.datetime) -> NextSurvey | None:
    """What the status page and the monthly update say about the participant's next survey."""
    if participant.is_withdrawn or participant.consented_at is None:
        return None
    waves = list(Wave.objects.filter(study_id=participant.study_id, active=True).select_related("study"))
    invitations = {i.wave_id: i for i in Invitation.objects.filter(participant=participant)}
    done = {wave_id for wave_id, i in invitations.items() if i.completed_at or i.cancelled_at or i.expired_at}
    found = next_wave(waves, participant.consented_at, done, at)
    if found is None:
        return None
    wave, opens, closes = found
    invitation = invitations.get(wave.pk)
    url = survey_url(invitation.pk, "") if invitation is not None and invitation.is_open(at) else None
    return NextSurvey(wave.name, opens, closes, url, wave.payment_amount)


def send_monthly_updates(*, at: dt.datetime) -> dict[str, int]:
    """Email every enrolled participant (consented over a month ago, not withdrawn) their status, next
    survey date and payments, once per calendar month (the message key makes a rerun send nothing)."""
    month = f"{at:%Y-%m}"
    people = (
        Participant.objects.filter(consented_at__lte=at - dt.timedelta(days=30), withdrawn_at__isnull=True)
        .exclude(
            Exists(
                MessageLog.objects.filter(
                    participant=OuterRef("pk"), key__endswith=f":{month}", kind=Kind.MONTHLY_UPDATE
                )
            )
        )
        .annotate(
            paid=Sum("payments__amount", filter=Q(payments__status__in=PAID)),
            owed=Sum("payments__amount", filter=~Q(payments__status__in=NOT_OWED)),
        )
        .select_related("study")
    )
    people_list = list(people)
    waves_by_study: dict[int, list[Wave]] = defaultdict(list)
    for wave in Wave.objects.filter(study_id__in={p.study_id for p in people_list}, active=True).select_related(
        "study"
    ):
        waves_by_study[wave.study_id].append(wave)
    done: dict[int, set[int]] = defaultdict(set)
    finished = Q(completed_at__isnull=False) | Q(cancelled_at__isnull=False) | Q(expired_at__isnull=False)
    for participant_id, wave_id in Invitation.objects.filter(finished, participant__in=people_list).values_list(
        "participant_id", "wave_id"
    ):
        done[participant_id].add(wave_id)
    connection, logs, template = get_connection(), [], get_template("surveys/email_monthly.txt")
    counts: defaultdict[str, int] = defaultdict(int)
    for person in people_list:
        assert person.consented_at is not None
        found = next_wave(waves_by_study[person.study_id], person.consented_at, done[person.pk], at)
        paid, owed = getattr(person, "paid", None), getattr(person, "owed", None)  # annotations
        context = {
            "participant": person,
            "next": found,
            "paid": paid or Decimal("0"),
            "owed": owed or Decimal("0"),
            "included": person.included_at is not None,
        }
        subject = "Your monthly study update"
        status, error = _send(connection, person.email, subject, template.render(context))
        counts[status] += 1
        logs.append(
            MessageLog(
                participant=person,
                kind=Kind.MONTHLY_UPDATE,
                channel=MessageLog.Channel.EMAIL,
                status=status,
                key=f"monthly:{person.pk}:{month}",
                subject=subject,
                error=error,
                at=at,
            )
        )
    MessageLog.objects.bulk_create(logs, batch_size=BATCH, ignore_conflicts=True)
    return dict(counts)
