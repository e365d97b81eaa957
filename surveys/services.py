"""Survey workflows: loading the library, invitations, answering and completing a wave.

Every function is keyword-only and safe to call twice. Messages (invitations, reminders, monthly
updates) live in ``surveys.messaging``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from participants.audit import record_audit
from participants.models import Participant, Study
from participants.payments import credit_survey_payment
from participants.services import record_baseline_completion
from participants.vendors import SIGNATURE_PARAM, signature_is_valid
from surveys import in_feed_schedule, indexes, library, piping
from surveys.models import InFeedPrompt, InFeedQuestion, Instrument, Invitation, Question, Response, Wave
from surveys.ranker_input import issue_positions_from_answers, ranker_survey_from_answers
from surveys.signals import wave_completed

logger = logging.getLogger(__name__)

LINK_SALT = "surveys.invitation"


class SurveyError(Exception):
    """A refusal with a stable code, shown to participants or returned by the callback API."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


# --- The library ---------------------------------------------------------------------------------


def load_instruments() -> list[tuple[Instrument, bool, int]]:
    """Write the instrument library into the database (``library.write_instruments``)."""
    return library.write_instruments(Instrument, Question)


# --- Survey links ----------------------------------------------------------------------------------


def survey_token(invitation: Invitation) -> str:
    """The private part of an invitation's survey link: the invitation id, signed (nothing stored)."""
    return signing.Signer(salt=LINK_SALT).sign(str(invitation.pk))


def invitation_for_token(token: str) -> Invitation | None:
    try:
        pk = signing.Signer(salt=LINK_SALT).unsign(token)
    except signing.BadSignature:
        return None
    related = ("participant__study", "wave__instrument", "wave__study")
    return Invitation.objects.select_related(*related).filter(pk=pk).first()


# --- Questions on a page ---------------------------------------------------------------------------


def baseline_answers(participant: Participant, wave: Wave) -> Mapping[str, Any]:
    """The participant's answers to their study's baseline (another wave than ``wave``), empty when there are none:
    what a later wave pipes the party from. One query; a page reads it once and passes it on."""
    answers = (
        Response.objects.filter(participant=participant, wave__study_id=wave.study_id, wave__kind=Wave.Kind.BASELINE)
        .exclude(wave=wave)
        .values_list("answers", flat=True)
        .first()
    )
    return answers or {}


def party_words(
    participant: Participant, wave: Wave, answers: Mapping[str, Any], *, baseline: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """Piped words for this participant: from this response, else their baseline answers (read here unless given,
    see ``baseline_answers``), else the screener."""
    if baseline is None:
        baseline = baseline_answers(participant, wave)
    return piping.words_for(piping.party_of(answers, baseline, participant.screener_answers))


def visible(question: Question, answers: Mapping[str, Any], words: Mapping[str, str]) -> bool:
    """Shown unless its condition fails; a piped question also needs the party (known from page 1 on)."""
    condition = question.show_if or {}
    asked = condition.get("question", "")
    # A condition on a question not answered yet counts as met, so the page count does not jump.
    if condition and asked in answers and answers[asked] not in condition.get("in", []):
        return False
    texts = [question.text, *(item.get("text", "") for item in question.items)]
    return bool(words) or not any(piping.needs_piping(text) for text in texts)


def visible_questions(
    questions: Sequence[Question], answers: Mapping[str, Any], words: Mapping[str, str]
) -> list[Question]:
    return [q for q in questions if visible(q, answers, words)]


def pages_of(questions: Sequence[Question]) -> list[int]:
    return sorted({q.page for q in questions})


# --- Answering -------------------------------------------------------------------------------------


def check_can_answer(invitation: Invitation, at: dt.datetime) -> None:
    if invitation.participant.is_withdrawn:
        raise SurveyError("withdrawn", "You have left the study, so there is nothing more to answer.")
    if invitation.completed_at is not None:
        raise SurveyError("completed", "You have already completed this survey. Thank you!")
    if invitation.cancelled_at is not None:
        raise SurveyError("cancelled", "This survey is no longer available.")
    if at < invitation.opens_at:
        raise SurveyError("not_open", f"This survey opens on {invitation.opens_at:%d %B %Y}.")
    if invitation.closes_at is not None and at >= invitation.closes_at:
        raise SurveyError("closed", "This survey has closed.")


def response_for(invitation: Invitation, at: dt.datetime) -> Response:
    """The participant's response to the wave: the saved one (resume) or a new, empty one."""
    response, _ = Response.objects.get_or_create(
        participant=invitation.participant,
        wave=invitation.wave,
        defaults={"started_at": at, "updated_at": at, "source": _source(invitation.wave)},
    )
    return response


def _source(wave: Wave) -> str:
    return Response.Source.EXTERNAL if wave.mode == Wave.Mode.EXTERNAL else Response.Source.INTERNAL


def save_page(
    *,
    response: Response,
    page_answers: Mapping[str, Any],
    next_page: int,
    at: dt.datetime,
    questions: Sequence[Question] | None = None,
    baseline: Mapping[str, Any] | None = None,
) -> Response:
    """Store a page's answers (answers of questions no longer shown are dropped) and where to resume. A page that
    has read the instrument's ``questions`` and the ``baseline`` answers already passes them (read here otherwise)."""
    with transaction.atomic():
        locked = Response.objects.select_for_update(of=("self",)).select_related("wave__instrument", "participant")
        response = locked.get(pk=response.pk)
        if response.completed_at is not None:
            return response
        answers = {**response.answers, **page_answers}
        if questions is None:
            questions = list(response.wave.instrument.questions.all())
        words = party_words(response.participant, response.wave, answers, baseline=baseline)
        shown = {q.key for q in visible_questions(questions, answers, words)}
        response.answers = {k: v for k, v in answers.items() if k.removesuffix("_write_in") in shown}
        response.page, response.updated_at = next_page, at
        response.save(update_fields=["answers", "page", "updated_at"])
    return response


def complete_invitation(
    *, invitation: Invitation, at: dt.datetime, answers: Mapping[str, Any] | None = None
) -> tuple[Response, bool]:
    """Record the completion of a wave, once: (response, True if this call completed it).

    In one transaction: the response is marked complete with its item scores and indexes, the
    invitation is completed and its pending reminders are cancelled (a reminder claimed after this
    commits finds nothing to send), the wave's payment is owed (once, by idempotency key), the
    baseline answers are copied for rankers and inclusion is re-evaluated. ``wave_completed`` is sent
    after commit, for anything else that follows a completion.
    """
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update()
            .select_related("wave__instrument", "participant__study")
            .get(pk=invitation.pk)
        )
        response = response_for(invitation, at)
        response = Response.objects.select_for_update().get(pk=response.pk)
        if invitation.completed_at is not None or response.completed_at is not None:
            return response, False
        check_can_answer(invitation, at)
        if answers is not None:
            response.answers = {**response.answers, **answers}
        wave = invitation.wave
        headline_key = _headline_key(wave.instrument)
        words = party_words(invitation.participant, wave, response.answers)
        response.item_scores = indexes.item_scores(response.answers, headline_key)
        response.indexes = indexes.raw_indexes(response.item_scores)
        response.piping = words
        response.completed_at = response.updated_at = at
        response.save()
        pending = max(wave.max_reminders - invitation.reminders_sent, 0) if invitation.invited_at else 0
        Invitation.objects.filter(pk=invitation.pk).update(
            completed_at=at, next_reminder_at=None, reminders_cancelled=pending
        )
        if wave.payment_amount > 0:
            credit_survey_payment(
                participant=invitation.participant,
                amount=wave.payment_amount,
                wave=wave.name,
                idempotency_key=f"survey:{wave.pk}:{invitation.participant_id}",
                at=at,
            )
        if wave.kind == Wave.Kind.BASELINE:
            record_baseline_completion(
                participant=invitation.participant,
                at=at,
                ranker_survey=ranker_survey_from_answers(response.answers),
                issue_positions=issue_positions_from_answers(response.answers),
            )
        record_audit(
            action="survey.completed",
            obj=invitation.participant,
            actor=invitation.participant,
            detail={"wave": wave.slug, "source": response.source, "reminders_cancelled": pending},
        )
        participant, completed_at = invitation.participant, at
        transaction.on_commit(
            lambda: wave_completed.send_robust(
                sender=Wave, wave=wave, participant=participant, response=response, at=completed_at
            )
        )
    return response, True


def _headline_key(instrument: Instrument) -> list[dict[str, Any]]:
    grid = instrument.questions.filter(kind=Question.Kind.HEADLINES).first()
    return list(grid.items) if grid is not None else []


# --- External mode ---------------------------------------------------------------------------------


def external_url(invitation: Invitation) -> str:
    """The external tool's link with the participant's pseudonymous id and the wave filled in."""
    wave = invitation.wave
    return wave.external_url.replace("{pid}", quote(invitation.participant.public_id, safe="")).replace(
        "{wave}", quote(wave.slug, safe="")
    )


def accept_callback(*, query_string: str, params: Mapping[str, str], at: dt.datetime) -> Response:
    """Record an external wave's completion reported by the tool's signed callback.

    The query carries ``wave`` (study-unique slug, with ``study``), ``pid`` (our public id) and ``sig``
    (HMAC-SHA256 of the rest of the query under the wave's ``callback_secret``). A bad signature, an
    unknown participant or wave, or a completion outside the window is refused with ``SurveyError``,
    logged and audited, and changes nothing. A repeat returns the first completion.
    """
    wave = (
        Wave.objects.select_related("study", "instrument")
        .filter(slug=params.get("wave", ""), study__slug=params.get("study", ""), mode=Wave.Mode.EXTERNAL)
        .first()
    )

    def refuse(code: str, text: str) -> SurveyError:
        logger.warning("survey callback refused (%s): %s", code, query_string)
        record_audit(action="survey.callback_refused", obj="Wave", detail={"code": code, "query": query_string[:500]})
        return SurveyError(code, text)

    if wave is None or not wave.callback_secret:
        raise refuse("unknown_wave", "No external wave with this study and slug.")
    if not signature_is_valid(query_string, params.get(SIGNATURE_PARAM, ""), wave.callback_secret):
        raise refuse("bad_signature", "The callback's signature is missing or wrong.")
    invitation = (
        Invitation.objects.select_related("participant__study", "wave")
        .filter(wave=wave, participant__public_id=params.get("pid", ""))
        .first()
    )
    if invitation is None:
        raise refuse("unknown_participant", "This participant was not invited to this wave.")
    if invitation.completed_at is None:
        try:
            check_can_answer(invitation, at)
        except SurveyError as exc:
            raise refuse(exc.code, exc.message) from None
    response, _ = complete_invitation(invitation=invitation, at=at)
    return response


# --- in-feed questions (supplementary section 2) ---------------------------------------------------

PLATFORM_NAMES = {"facebook": "Facebook", "reddit": "Reddit", "twitter": "X (Twitter)"}
TOKEN = re.compile(r"\[([a-z_]+)\]")  # every [token]: piping's own and [platform]


def load_in_feed_questions(*, study: Study) -> int:
    """Write the paper's in-feed set (``in_feed_schedule.PAPER_QUESTIONS``) for the study; rerunning updates it."""
    with transaction.atomic():
        for spec in in_feed_schedule.PAPER_QUESTIONS:
            defaults = {"text": spec["text"], "options": spec["options"]}
            defaults |= {"asked_from": spec.get("asked_from"), "asked_until": spec.get("asked_until")}
            InFeedQuestion.objects.update_or_create(study=study, key=spec["key"], defaults=defaults)
    return len(in_feed_schedule.PAPER_QUESTIONS)


def in_feed_words(participant: Participant, platform: str) -> dict[str, str]:
    """The words piped into in-feed questions: the party words (as for survey pages) and ``[platform]``."""
    baseline = (
        Response.objects.filter(participant=participant, wave__kind=Wave.Kind.BASELINE, completed_at__isnull=False)
        .values_list("answers", flat=True)
        .first()
    )
    words = piping.words_for(piping.party_of(baseline or {}, participant.screener_answers))
    return {**words, "platform": PLATFORM_NAMES.get(platform, platform)}


def pipe_in_feed(text: str, words: dict[str, str]) -> str | None:
    """``text`` with every token replaced; None when a token has no word (the question is not asked)."""
    tokens = set(TOKEN.findall(text))
    if not tokens <= words.keys():
        return None
    return TOKEN.sub(lambda match: words[match.group(1)], text)


# --- in-feed questions ---------------------------------------------------------------------------


class InFeedError(Exception):
    """A refused in-feed request, with the API's error code, field and HTTP status."""

    def __init__(self, code: str, message: str, *, field: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.field, self.status = code, message, field, status


def _local_day(participant: Participant, at: dt.datetime) -> dt.date:
    return at.astimezone(zoneinfo.ZoneInfo(participant.study.timezone)).date()


def _last_prompt(participant: Participant) -> InFeedPrompt | None:
    return participant.in_feed_prompts.order_by("-sequence").first()


def next_in_feed_prompt(
    *, participant: Participant, platform: str, at: dt.datetime | None = None
) -> InFeedPrompt | None:
    """The prompt to show on ``platform`` now, recording the day it is shown; None when nothing is due.

    Only enrolled participants with the consent in force get questions (see ``surveys.infeed`` for the rule).
    """
    at = at or timezone.now()
    if participant.enrolled_at is None or not participant.has_current_consent(at):
        return None
    today = _local_day(participant, at)
    last = _last_prompt(participant)
    state = (
        None
        if last is None
        else in_feed_schedule.LastPrompt(last.sequence, last.first_shown_on, last.platform, last.closed)
    )
    decision = in_feed_schedule.offer(
        installed_on=_local_day(participant, participant.enrolled_at), last=state, today=today, platform=platform
    )
    if decision is None:
        return None
    if decision.action == "continue":
        assert last is not None
        if InFeedPrompt.objects.filter(pk=last.pk, last_shown_on__lt=today).update(
            last_shown_on=today, days_shown=F("days_shown") + 1
        ):
            last.refresh_from_db(fields=["last_shown_on", "days_shown"])
        return last
    return _start_prompt(participant, decision.sequence, platform, today, at)


def _start_prompt(
    participant: Participant, sequence: int, platform: str, today: dt.date, at: dt.datetime
) -> InFeedPrompt | None:
    words = in_feed_words(participant, platform)
    texts = {
        q.key: (q, text)
        for q in participant.study.in_feed_questions.all()
        if q.is_asked_on(today) and (text := pipe_in_feed(q.text, words)) is not None
    }
    if not texts:
        return None
    seed = participant.study.randomization_seed
    question, text = texts[in_feed_schedule.question_for(seed, participant.public_id, sequence, list(texts))]
    try:
        with transaction.atomic():
            return InFeedPrompt.objects.create(
                participant=participant,
                question=question,
                sequence=sequence,
                platform=platform,
                first_shown_on=today,
                last_shown_on=today,
                text=text,
                created_at=at,
            )
    except IntegrityError:  # two tabs asked at once: the other request started this prompt
        return participant.in_feed_prompts.filter(sequence=sequence, platform=platform).first()


def _own_prompt(participant: Participant, prompt_id: int) -> InFeedPrompt:
    prompt = InFeedPrompt.objects.select_related("question").filter(pk=prompt_id, participant=participant).first()
    if prompt is None:
        raise InFeedError("not_found", "No such question for this participant.", field="prompt_id", status=404)
    return prompt


def _repeat(participant: Participant, client_key: str) -> InFeedPrompt | None:
    return InFeedPrompt.objects.filter(participant=participant, client_key=client_key).first()


def answer_in_feed_prompt(
    *, participant: Participant, prompt_id: int, value: Any, client_key: str, at: dt.datetime | None = None
) -> tuple[InFeedPrompt, bool]:
    """Record the answer once; a repeat with the same ``client_key`` returns the first (created False)."""
    return _close_prompt(participant, prompt_id, client_key, at or timezone.now(), answer=value)


def dismiss_in_feed_prompt(
    *, participant: Participant, prompt_id: int, client_key: str, at: dt.datetime | None = None
) -> tuple[InFeedPrompt, bool]:
    """The participant closed the question without answering: it is not offered again."""
    return _close_prompt(participant, prompt_id, client_key, at or timezone.now(), answer=None, dismiss=True)


def _close_prompt(
    participant: Participant, prompt_id: int, client_key: str, at: dt.datetime, *, answer: Any, dismiss: bool = False
) -> tuple[InFeedPrompt, bool]:
    if participant.is_withdrawn:
        raise InFeedError("withdrawn", "You have left the study; nothing is recorded.", status=403)
    repeat = _repeat(participant, client_key)
    if repeat is not None:
        if repeat.pk != prompt_id:
            raise InFeedError(
                "key_reused", "This client key was used for another question.", field="client_key", status=409
            )
        return repeat, False
    prompt = _own_prompt(participant, prompt_id)
    if not dismiss and answer not in prompt.question.option_values():
        raise InFeedError("invalid_choice", f"{answer!r} is not one of this question's options.", field="value")
    changes: dict[str, Any] = {"client_key": client_key}
    changes |= {"dismissed_at": at} if dismiss else {"answer": answer, "answered_at": at}
    try:
        with transaction.atomic():
            closed = InFeedPrompt.objects.filter(pk=prompt.pk, answered_at__isnull=True, dismissed_at__isnull=True)
            updated = closed.update(**changes)
    except IntegrityError:  # the same key raced in on another connection
        return _repeat_or_fail(participant, client_key, prompt_id)
    if not updated:
        return _repeat_or_fail(participant, client_key, prompt_id)
    prompt.refresh_from_db()
    return prompt, True


def _repeat_or_fail(participant: Participant, client_key: str, prompt_id: int) -> tuple[InFeedPrompt, bool]:
    repeat = _repeat(participant, client_key)
    if repeat is not None and repeat.pk == prompt_id:
        return repeat, False
    raise InFeedError(
        "already_closed", "This question was already answered or dismissed.", field="prompt_id", status=409
    )
