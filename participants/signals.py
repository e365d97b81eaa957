"""Signals other apps connect to; ``participants`` imports none of them.

``participant_withdrawn`` is sent once per participant, after the withdrawal has been committed,
with keyword arguments ``participant`` (the Participant, already withdrawn and possibly erased),
``by`` (the user, the participant themself, or None for the system), ``reason`` (str) and
``erase`` (bool: the consent says to delete data collected so far). Receivers cancel what they own
(survey invitations, reminders, in-feed questions) and delete their rows when ``erase`` is True.
It is sent with ``send_robust``: a failing receiver is logged and never undoes the withdrawal.
"""

from __future__ import annotations

from django.dispatch import Signal

participant_withdrawn = Signal()
