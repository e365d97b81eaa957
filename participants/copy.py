"""Text of the participant pages: researchers' ``PageCopy`` rows, else the defaults below."""

from __future__ import annotations

from dataclasses import dataclass

from participants.models import PageCopy, Study

DEFAULT_COPY: dict[str, tuple[str, str]] = {
    "landing": (
        "A study about your social media feeds",
        "Researchers are studying how the order of posts in social media feeds affects people's experience.\n\n"
        "Taking part means answering a few questions, installing a browser extension in Chrome and "
        "keeping it installed for several months. You will be paid for your participation and for each survey.",
    ),
    "screener": ("A few questions", "These questions tell us whether the study fits how you use social media."),
    "consent": (
        "Informed consent",
        "Please read the information below carefully. You can print it or come back to it from your status page.",
    ),
    "install": (
        "Install the extension",
        "Thank you for joining the study. Install the extension from the Chrome Web Store, open it, and enter "
        "your enrolment code. Keep the extension installed: you are counted as a participant once it has been "
        "installed for a week.",
    ),
    "status": ("Your participation", "This private page shows where you are in the study. Keep the link to yourself."),
    "withdraw": (
        "Withdraw from the study",
        "You can stop taking part at any time, without giving a reason. The extension stops collecting data and "
        "stops changing your feeds at once. Payments you have already earned are kept.",
    ),
    "withdrawn": ("You have left the study", "Thank you for your time. You can now uninstall the extension."),
    "screened_out": (
        "Thank you for your interest",
        "Unfortunately this study is not a fit for you right now. Thank you for your time.",
    ),
    "overquota": ("This study is full", "We have all the participants we need from your panel. Thank you."),
    "duplicate": ("You have already started", "Our records show you have already taken part in this screening."),
    "complete": ("All done", "Thank you. You can close this page."),
    "unavailable": (
        "This link does not work",
        "The link you followed is incomplete or no longer active. Please go back to the site that sent you here "
        "and try again.",
    ),
    "rejected": (
        "This link could not be verified",
        "The link you followed appears to have been changed. Please go back to the site that sent you here.",
    ),
    "study_closed": (
        "This study has ended",
        "This study is no longer taking new participants. Thank you for your interest.",
    ),
    "expired": ("Please start again", "Your session has ended. Please follow the link from your panel again."),
    "busy": (
        "Please wait a moment",
        "Many people on your network opened this link just now. Please wait a minute, then follow it again.",
    ),
}


@dataclass(frozen=True)
class Copy:
    title: str
    body: str

    @property
    def paragraphs(self) -> list[str]:
        return [part.strip() for part in self.body.split("\n\n") if part.strip()]


def page_copy(study: Study | None, key: str) -> Copy:
    """The copy of one page; the code's default when the study has no row for it."""
    if study is not None:
        row = PageCopy.objects.filter(study=study, key=key).first()
        if row is not None:
            return Copy(row.title, row.body)
    title, body = DEFAULT_COPY[key]
    return Copy(title, body)
