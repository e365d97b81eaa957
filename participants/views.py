"""Participant pages: vendor entry, landing, screener, consent, install, status and withdrawal.

The signup pages find the participant through the session (set by the vendor link); the status
pages through the private key in their URL. No page ever shows an arm.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from participants import payments, services, tokens
from participants.copy import page_copy
from participants.forms import ConsentForm, ScreenerForm, WithdrawForm
from participants.models import ConsentDocument, Participant, RecruitmentSource, Study, sha256_hex
from participants.roles import researcher_required
from participants.status_sections import status_sections_context
from prc_site.lib.clients import client_address
from prc_site.lib.ratelimit import shared_bucket

SESSION_PARTICIPANT = "prc_participant"  # the participant's pk: the only thing signup keeps in the session
# The enrolment code and status key travel from the consent answer to the install page in a short-lived
# signed cookie scoped to that page, read once and deleted: they are never stored server-side in plain.
INSTALL_COOKIE = "prc_install"
INSTALL_COOKIE_SALT = "participants.install"
INSTALL_COOKIE_MAX_AGE_S = 15 * 60
EXIT_COPY = {"screenout": "screened_out", "quality": "screened_out", "overquota": "overquota"}
EXIT_COPY |= {"duplicate": "duplicate", "complete": "complete"}
PREVIEW_PAGES = ("landing", "screener", "consent", "install", "status")

Stage = Participant.Stage
Outcome = RecruitmentSource.Outcome


def message_page(request: HttpRequest, study: Study | None, key: str, *, status: int = 200) -> HttpResponse:
    return render(request, "participants/message.html", {"copy": page_copy(study, key)}, status=status)


def _posted(request: HttpRequest) -> QueryDict | None:
    """Form data on POST (even when empty, so an empty submission shows errors), else None."""
    return request.POST if request.method == "POST" else None


def _session_participant(request: HttpRequest) -> Participant | None:
    pk = request.session.get(SESSION_PARTICIPANT)
    if pk is None:
        return None
    return Participant.objects.select_related("study", "source").filter(pk=pk).first()


def signup_step(
    allowed: Callable[[HttpRequest, Participant], bool],
) -> Callable[[Callable[[HttpRequest, Participant], HttpResponse]], Callable[[HttpRequest], HttpResponse]]:
    """The one access rule of the signup pages.

    The participant comes from the session (no session: the "link expired" page); once the study has closed
    every step shows the "study closed" page; a participant who is not at this step (``allowed`` says no) is
    sent to the step they are at; otherwise the view gets them.
    """

    def decorate(
        view: Callable[[HttpRequest, Participant], HttpResponse],
    ) -> Callable[[HttpRequest], HttpResponse]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest) -> HttpResponse:
            participant = _session_participant(request)
            if participant is None:
                return message_page(request, None, "expired", status=400)
            if participant.study.is_closed:
                return message_page(request, participant.study, "study_closed", status=410)
            if not allowed(request, participant):
                return _next_step(participant)
            return view(request, participant)

        return wrapper

    return decorate


def _status_participant(key: str) -> Participant:
    queryset = Participant.objects.select_related("study")
    return get_object_or_404(queryset, status_key_hash=sha256_hex(key), status_key_hash__gt="")


def _leave_for_vendor(
    request: HttpRequest, participant: Participant, outcome: str, vendor_pid: str = ""
) -> HttpResponse:
    url = services.vendor_redirect_url(participant=participant, outcome=outcome, vendor_pid=vendor_pid)
    if url is None:
        return message_page(request, participant.study, EXIT_COPY.get(outcome, "complete"))
    return HttpResponseRedirect(url)


def _next_step(participant: Participant) -> HttpResponse:
    """Where a participant in the signup flow belongs now (back buttons and reloads land here)."""
    if participant.vendor_outcome in (Outcome.SCREENOUT, Outcome.OVERQUOTA, Outcome.QUALITY):
        return redirect("participants:vendor-return")
    if participant.stage == Stage.SCREENING:
        return redirect("participants:screener")
    if participant.stage == Stage.SCREENED_IN:
        return redirect("participants:consent")
    return redirect("participants:install")


@require_http_methods(["GET", "HEAD"])
def join(request: HttpRequest, source_slug: str, study_slug: str | None = None) -> HttpResponse:
    address = client_address(request.headers, request.META.get("REMOTE_ADDR") or "")
    if not shared_bucket(settings.JOIN_RATE_PER_SECOND, settings.JOIN_BURST).allow(address):
        return message_page(request, None, "busy", status=429)
    decision = services.enter_from_vendor(
        source_slug=source_slug,
        study_slug=study_slug,
        query_string=request.META.get("QUERY_STRING", ""),
        params=dict(request.GET.lists()),
        url=request.build_absolute_uri(),
        session_participant_id=request.session.get(SESSION_PARTICIPANT),
    )
    study = decision.source.study if decision.source else None
    if decision.kind in ("unavailable", "rejected"):
        return message_page(request, study, decision.kind, status=decision.status)
    assert decision.participant is not None
    if decision.kind == "duplicate":
        return _leave_for_vendor(request, decision.participant, Outcome.DUPLICATE, decision.vendor_pid)
    request.session[SESSION_PARTICIPANT] = decision.participant.pk
    return redirect("participants:landing")


@signup_step(lambda request, p: p.stage == Stage.SCREENING)
def landing(request: HttpRequest, participant: Participant) -> HttpResponse:
    return render(request, "participants/landing.html", {"copy": page_copy(participant.study, "landing")})


@require_http_methods(["GET", "HEAD", "POST"])
@signup_step(lambda request, p: p.stage == Stage.SCREENING)
def screener(request: HttpRequest, participant: Participant) -> HttpResponse:
    form = ScreenerForm(_posted(request), study=participant.study)
    if request.method == "POST" and form.is_valid():
        decision = services.submit_screener(participant=participant, answers=form.cleaned_data)
        if decision == Stage.SCREENED_IN:
            return redirect("participants:consent")
        return _leave_for_vendor(request, participant, decision)
    context = {"copy": page_copy(participant.study, "screener"), "form": form}
    return render(request, "participants/screener.html", context, status=400 if form.is_bound else 200)


@require_http_methods(["GET", "HEAD", "POST"])
@signup_step(lambda request, p: p.stage == Stage.SCREENED_IN or request.method == "POST")
def consent(request: HttpRequest, participant: Participant) -> HttpResponse:
    return _consent_form(request, participant, success_url=reverse("participants:install"))


def _consent_form(request: HttpRequest, participant: Participant, *, success_url: str) -> HttpResponse:
    """Show the current consent document, or record the participant's agreement to it."""
    current = services.current_consent_document(study=participant.study)
    if current is None:
        return message_page(request, participant.study, "unavailable", status=503)
    document = current
    if request.method == "POST":
        posted = request.POST.get("version", "")
        document = ConsentDocument.objects.filter(study=participant.study, version=posted).first() or current
    form = ConsentForm(_posted(request), document=document)
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            result = services.consent_participant(
                participant=participant,
                document=document,
                answers=form.answers(),
                ip=request.META.get("REMOTE_ADDR", ""),
                user_agent=request.headers.get("User-Agent", ""),
            )
        except services.EnrolmentError as exc:
            error, form = exc.message, ConsentForm(document=current)
        else:
            response = HttpResponseRedirect(success_url)
            if result.enrolment_code:
                _hand_over_secrets(response, participant, code=result.enrolment_code, key=result.status_key)
            return response
    context = {"copy": page_copy(participant.study, "consent"), "form": form, "document": form.document}
    context["error"] = error
    return render(request, "participants/consent.html", context, status=400 if form.is_bound or error else 200)


def _hand_over_secrets(response: HttpResponse, participant: Participant, *, code: str, key: str | None) -> None:
    value = json.dumps({"participant": participant.pk, "code": code, "key": key})
    response.set_signed_cookie(
        INSTALL_COOKIE,
        value,
        salt=INSTALL_COOKIE_SALT,
        max_age=INSTALL_COOKIE_MAX_AGE_S,
        path=reverse("participants:install"),
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


def _handed_secrets(request: HttpRequest, participant: Participant) -> dict[str, str | None]:
    raw = request.get_signed_cookie(
        INSTALL_COOKIE, default=None, salt=INSTALL_COOKIE_SALT, max_age=INSTALL_COOKIE_MAX_AGE_S
    )
    try:
        handed = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return handed if isinstance(handed, dict) and handed.get("participant") == participant.pk else {}


@require_http_methods(["GET", "HEAD", "POST"])
@signup_step(lambda request, p: p.consented_at is not None)
def install(request: HttpRequest, participant: Participant) -> HttpResponse:
    """The enrolment code and status link, shown once; a reload offers a fresh code (POST) to this browser."""
    if request.method == "POST":
        try:
            code = services.issue_enrolment_code(participant=participant)
        except services.EnrolmentError:
            return redirect("participants:install")
        return _install_page(request, participant, code=code, key=None)
    handed = _handed_secrets(request, participant)
    response = _install_page(request, participant, code=handed.get("code"), key=handed.get("key"))
    response.delete_cookie(INSTALL_COOKIE, path=reverse("participants:install"), samesite="Lax")
    return response


def _install_page(request: HttpRequest, participant: Participant, *, code: str | None, key: str | None) -> HttpResponse:
    context = {
        "copy": page_copy(participant.study, "install"),
        "code": code,
        "status_key": key,
        "extension_url": settings.PRC_EXTENSION_URL,
        "participant": participant,
        "has_vendor_return": bool(participant.source and participant.source.complete_url),
    }
    return render(request, "participants/install.html", context)


@signup_step(lambda request, p: bool(p.vendor_outcome))
def vendor_return(request: HttpRequest, participant: Participant) -> HttpResponse:
    """Send the participant back to their vendor with the outcome already recorded."""
    return _leave_for_vendor(request, participant, participant.vendor_outcome)


def status(request: HttpRequest, key: str) -> HttpResponse:
    participant = _status_participant(key)
    context = {
        "copy": page_copy(participant.study, "withdrawn" if participant.is_withdrawn else "status"),
        "participant": participant,
        "key": key,
        "payments": payments.payment_summary(participant),
        "needs_consent": not participant.is_withdrawn and not participant.has_current_consent(),
        "installed": participant.installs.filter(uninstalled_at__isnull=True).exists(),
        **status_sections_context(participant, timezone.now()),
    }
    return render(request, "participants/status.html", context)


@require_http_methods(["GET", "HEAD", "POST"])
def status_consent(request: HttpRequest, key: str) -> HttpResponse:
    """What the participant agreed to (printable), and the form to agree to a newer version."""
    participant = _status_participant(key)
    if not participant.is_withdrawn and (request.method == "POST" or request.GET.get("renew")):
        return _consent_form(request, participant, success_url=reverse("participants:status", kwargs={"key": key}))
    records = participant.consents.select_related("document").order_by("-given_at")
    context = {"copy": page_copy(participant.study, "consent"), "records": records, "key": key}
    context["needs_consent"] = not participant.is_withdrawn and not participant.has_current_consent()
    return render(request, "participants/consent_record.html", context)


@require_http_methods(["GET", "HEAD", "POST"])
def withdraw(request: HttpRequest, key: str) -> HttpResponse:
    participant = _status_participant(key)
    if participant.is_withdrawn:
        return redirect("participants:status", key=key)
    form = WithdrawForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        services.withdraw_participant(participant=participant, by=participant, reason=form.cleaned_data["reason"])
        return redirect("participants:status", key=key)
    context = {"copy": page_copy(participant.study, "withdraw"), "form": form, "key": key}
    return render(request, "participants/withdraw.html", context, status=400 if form.is_bound else 200)


@require_POST
def new_code(request: HttpRequest, key: str) -> HttpResponse:
    """A fresh enrolment code, to install the extension again (new computer, reinstall)."""
    participant = _status_participant(key)
    try:
        code = services.issue_enrolment_code(participant=participant)
    except services.EnrolmentError:
        return redirect("participants:status", key=key)
    return _install_page(request, participant, code=code, key=key)


@require_http_methods(["GET", "HEAD", "POST"])
@researcher_required
def preview(request: HttpRequest, study_slug: str, page: str) -> HttpResponse:
    """A participant page of ``study`` as a participant would see it, with its own copy; nothing is stored.

    The participant shown is an unsaved stand-in, and a submitted form only shows the page again.
    """
    study = get_object_or_404(Study, slug=study_slug)
    if page not in PREVIEW_PAGES:
        raise Http404("No such participant page.")
    now = timezone.now()
    stand_in = Participant(study=study, public_id="p_preview", created_at=now, consented_at=now, enrolled_at=now)
    context: dict[str, object] = {
        "copy": page_copy(study, page),
        "preview": {"study": study, "page": page, "pages": PREVIEW_PAGES},
    }
    if page == "screener":
        context["form"] = ScreenerForm(study=study)
    elif page == "consent":
        document = services.current_consent_document(study=study)
        if document is None:
            context["copy"] = page_copy(study, "unavailable")
            context["preview_note"] = "This study has no consent document in effect: participants would see this page."
            return render(request, "participants/message.html", context)
        context |= {"form": ConsentForm(document=document), "document": document}
    elif page == "install":
        context |= {
            "code": tokens.new_enrolment_code(),
            "status_key": "preview",
            "extension_url": settings.PRC_EXTENSION_URL,
            "participant": stand_in,
            "has_vendor_return": study.sources.exclude(complete_url="").exists(),
        }
    elif page == "status":
        context |= {"participant": stand_in, "key": "preview", "payments": [], "paid_total": 0, "pending_total": 0}
        context |= {"needs_consent": False, "installed": True}
    return render(request, f"participants/{page}.html", context)
