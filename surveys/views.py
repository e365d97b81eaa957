"""Survey pages (our own forms, one page at a time, saved as the participant goes) and external mode.

A participant reaches a survey through the private link in their invitation (``/survey/<token>/``):
the token is the invitation id, signed. An external wave's link forwards to the external tool with
the participant's pseudonymous id; the tool reports the completion to ``/api/v1/surveys/callback``.
"""

from __future__ import annotations

import datetime as dt

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from surveys import services
from surveys.forms import SurveyPageForm
from surveys.models import Invitation, Response, Wave

CLOSED_STATUS = {"withdrawn": 403, "completed": 200, "cancelled": 410, "not_open": 403, "closed": 410}


def message(request: HttpRequest, title: str, text: str, *, status: int = 200) -> HttpResponse:
    return render(request, "surveys/message.html", {"title": title, "text": text}, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
def survey_page(request: HttpRequest, token: str) -> HttpResponse:
    invitation = services.invitation_for_token(token)
    if invitation is None:
        raise Http404("Unknown survey link.")
    now = timezone.now()
    try:
        services.check_can_answer(invitation, now)
    except services.SurveyError as exc:
        title = "Thank you!" if exc.code == "completed" else invitation.wave.name
        return message(request, title, exc.message, status=CLOSED_STATUS[exc.code])
    response = services.response_for(invitation, now)
    if invitation.wave.mode == Wave.Mode.EXTERNAL:
        return HttpResponseRedirect(services.external_url(invitation))
    return _page(request, invitation, response, now)


def _page(request: HttpRequest, invitation: Invitation, response: Response, now: dt.datetime) -> HttpResponse:
    wave = invitation.wave
    questions = list(wave.instrument.questions.all())
    answers = dict(response.answers)
    baseline = services.baseline_answers(invitation.participant, wave)
    words = services.party_words(invitation.participant, wave, answers, baseline=baseline)
    pages = services.pages_of(services.visible_questions(questions, answers, words))
    current = next((p for p in pages if p >= response.page), pages[-1])
    if request.method == "POST" and request.POST.get("action") == "back":
        earlier = [p for p in pages if p < current]
        services.save_page(
            response=response,
            page_answers={},
            next_page=earlier[-1] if earlier else current,
            at=now,
            questions=questions,
            baseline=baseline,
        )
        return redirect(request.path)
    on_page = [q for q in services.visible_questions(questions, answers, words) if q.page == current]
    form = SurveyPageForm(
        request.POST if request.method == "POST" else None, questions=on_page, words=words, initial_answers=answers
    )
    if request.method == "POST" and form.is_valid():
        answers.update(form.answers())
        words = services.party_words(invitation.participant, wave, answers, baseline=baseline)
        later = [p for p in services.pages_of(services.visible_questions(questions, answers, words)) if p > current]
        services.save_page(
            response=response,
            page_answers=form.answers(),
            next_page=later[0] if later else current,
            at=now,
            questions=questions,
            baseline=baseline,
        )
        if not later:
            services.complete_invitation(invitation=invitation, at=now)
        return redirect(request.path)
    context = {
        "wave": wave,
        "form": form,
        "shown": form.shown(),
        "page_number": pages.index(current) + 1,
        "page_count": len(pages),
        "percent": round(100 * pages.index(current) / len(pages)),
        "first_page": current == pages[0],
        "last_page": current == pages[-1],
    }
    return render(request, "surveys/page.html", context, status=400 if form.is_bound else 200)
