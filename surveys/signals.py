"""Signals the surveys app sends; other code connects to them in its ``AppConfig.ready()``.

``wave_completed`` is sent once per participant and wave, after the completion has been committed,
with keyword arguments ``wave`` (Wave), ``participant`` (Participant), ``response`` (Response) and
``at`` (datetime). Payments credit the wave's ``payment_amount`` from it. Sent with ``send_robust``.
"""

from __future__ import annotations

from django.dispatch import Signal

wave_completed = Signal()
