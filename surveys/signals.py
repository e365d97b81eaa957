"""Signals the surveys app sends; other code connects to them in its ``AppConfig.ready()``.

``wave_completed`` is sent once per participant and wave, after the completion has been committed,
with keyword arguments ``wave`` (Wave), ``participant`` (Participant), ``response`` (Response) and
``at`` (datetime). Sent with ``send_robust``. (The wave's payment is credited inside the completion's
transaction, not from this signal.)
"""

from __future__ import annotations

from django.dispatch import Signal

wave_completed = Signal()
