"""Forms of the participant pages, and the study-and-period filter of the research dashboards."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Self

from django import forms
from django.http import HttpRequest
from django.utils import timezone

from participants.models import ConsentDocument, Study
from participants.screening import DEVICES, PARTIES, PLATFORM_CHOICES

LAST_STUDY_SESSION_KEY = "prc_dashboard_study"
YES_NO = [("yes", "Yes"), ("no", "No")]


def interest_question(study: Study) -> str:
    """Table S16's interest question, with this study's payments, lottery, length and who runs it."""
    total = study.survey_payment * study.paid_surveys
    lottery = f", plus a chance to win {_usd(study.lottery_prize)}," if study.lottery_prize > 0 else ""
    months = f"{study.commitment_months} month{'s' if study.commitment_months != 1 else ''}"
    surveys = f"{study.paid_surveys} survey{'s' if study.paid_surveys != 1 else ''}"
    return (
        "We are recruiting people to participate in an academic research study that involves installing a browser "
        f"extension. You will be paid a total of {_usd(total)} for your participation in this study{lottery} if "
        f"you keep the extension installed for {months}. This is a study run by {study.run_by} who are studying "
        "the effects of social media and trying to make a better user experience. We would like to collect "
        "anonymized data about your online experiences for research purposes only, and make small changes to which "
        f"content you see on social media. You will be paid {_usd(study.survey_payment)} for each of {surveys} over "
        "several months. Are you interested in participating?"
    )


def _usd(amount: Decimal) -> str:
    return f"${amount:,.0f}" if amount == amount.to_integral_value() else f"${amount:,.2f}"


class ScreenerForm(forms.Form):
    """Table S16's questions, plus party (usable as a randomization stratum)."""

    device = forms.ChoiceField(label="What device are you currently using?", choices=DEVICES, widget=forms.RadioSelect)
    chrome = forms.ChoiceField(
        label="Are you currently using the Chrome browser on your computer?", choices=YES_NO, widget=forms.RadioSelect
    )
    platforms = forms.MultipleChoiceField(
        label="Which of the following social media apps or websites do you use?",
        choices=PLATFORM_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    desktop_share = forms.IntegerField(
        label="What percentage of the time do you use social media from your desktop computer (including laptops), "
        "as opposed to your phone or mobile device?",
        min_value=0,
        max_value=100,
        help_text="A number from 0 to 100.",
    )
    party = forms.ChoiceField(
        label="Generally speaking, do you think of yourself as a…", choices=PARTIES, widget=forms.RadioSelect
    )
    interest = forms.ChoiceField(choices=YES_NO, widget=forms.RadioSelect)

    def __init__(self, *args: Any, study: Study, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["interest"].label = interest_question(study)


class ConsentForm(forms.Form):
    """One required checkbox per statement of the consent document, plus the version read."""

    version = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, document: ConsentDocument, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.document = document
        self.fields["version"].initial = document.version
        for index, question in enumerate(document.questions):
            self.fields[f"q{index}"] = forms.BooleanField(label=question, required=True)

    def answers(self) -> dict[str, bool]:
        return {q: bool(self.cleaned_data.get(f"q{i}")) for i, q in enumerate(self.document.questions)}


class WithdrawForm(forms.Form):
    confirm = forms.BooleanField(label="Yes, I want to leave the study", required=True)
    reason = forms.CharField(
        label="Why are you leaving? (optional)",
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class StudyPeriodFilterForm(forms.Form):
    """A dashboard's study and inclusive date range, bound from the query string over defaults.

    Subclasses add their own filters, set ``default_days`` and order the fields for their page.
    """

    MAX_RANGE_DAYS = 731
    default_days = 30

    study = forms.ModelChoiceField(queryset=Study.objects.order_by("-created_at"), to_field_name="slug")
    start = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To (inclusive)", widget=forms.DateInput(attrs={"type": "date"}))

    @classmethod
    def from_request(cls, request: HttpRequest) -> Self:
        """The form for this request; the study it shows becomes the researcher's default on every dashboard."""
        form = cls.from_query(request.GET.dict(), remembered=request.session.get(LAST_STUDY_SESSION_KEY, ""))
        if form.is_valid():
            request.session[LAST_STUDY_SESSION_KEY] = form.cleaned_data["study"].slug
        return form

    @classmethod
    def from_query(cls, query: dict[str, str], remembered: str = "") -> Self:
        """Defaults: the last ``default_days`` days of the study this researcher last looked at (``remembered``),
        else of the most recent non-draft study; empty values keep them."""
        today = timezone.localdate()
        studies = Study.objects.order_by("-created_at")
        latest = (remembered and studies.filter(slug=remembered).first()) or studies.exclude(
            status=Study.Status.DRAFT
        ).first()
        defaults = {
            "study": latest.slug if latest else "",
            "start": (today - dt.timedelta(days=cls.default_days - 1)).isoformat(),
            "end": today.isoformat(),
        }
        return cls({**defaults, **{key: value for key, value in query.items() if value}})

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end and start > end:
            raise forms.ValidationError("The start date must not be after the end date.")
        if start and end and (end - start).days >= self.MAX_RANGE_DAYS:  # the end day counts too
            raise forms.ValidationError(f"Choose a range of at most {self.MAX_RANGE_DAYS} days.")
        return data
