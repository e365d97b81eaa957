"""Forms of the participant pages."""

from __future__ import annotations

from typing import Any

from django import forms

from participants.models import ConsentDocument
from participants.screening import DEVICES, PARTIES, PLATFORM_CHOICES

YES_NO = [("yes", "Yes"), ("no", "No")]

INTEREST_QUESTION = (
    "We are recruiting people to participate in an academic research study that involves installing a browser "
    "extension, collecting anonymized data about your online experiences for research purposes only, and making "
    "small changes to which content you see on social media. You will be paid for your participation and for each "
    "survey. Are you interested in participating?"
)


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
    interest = forms.ChoiceField(label=INTEREST_QUESTION, choices=YES_NO, widget=forms.RadioSelect)


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
