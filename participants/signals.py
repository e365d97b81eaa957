"""Signals other apps connect to; ``participants`` imports none of them.

``participant_withdrawn`` is sent once per participant, after the withdrawal has been committed,
with keyword arguments ``participant`` (the Participant, already withdrawn and possibly erased),
``by`` (the user, the participant themself, or None for the system), ``reason`` (str) and
``erase`` (bool: the consent says to delete data collected so far). Receivers cancel what they own
(survey invitations, reminders, in-feed questions) and delete their rows when ``erase`` is True.
It is sent with ``send_robust``: a failing receiver is logged and never undoes the withdrawal.

``participant_erasing`` is sent when a withdrawal under delete terms erases data collected so far,
*inside* the withdrawal's transaction, with ``participant`` and ``at``. A receiver deletes or
scrubs the rows its app holds about the participant with the ORM (so the deletion commits or rolls
back with the withdrawal) and returns a dict of counts for the ``participant.erased`` audit event,
e.g. ``{"slates": 12}``. It is sent with ``send``: a receiver that raises rolls the withdrawal back,
so nothing is ever recorded as erased that was not. Data outside PostgreSQL (Redis) is erased after
commit by a ``participant_withdrawn`` receiver that retries until it succeeds.
"""

from __future__ import annotations

from django.dispatch import Signal

participant_withdrawn = Signal()
participant_erasing = Signal()
