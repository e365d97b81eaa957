"""Give the demo its candidate inventory, pools and queues, so its inserting arms insert (``rankers.content.demo``).

``seed_demo`` runs it before the demo's rehearsal; run it again to bring the demo fresh posts. Safe to run again:
within the same six hours it stores nothing new and rebuilds the same pools and queues.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand

from participants.management.commands.seed_demo import refuse_in_production
from rankers.content.demo import seed_demo_content


class Command(BaseCommand):
    help = "Store the demo's synthetic candidate posts with annotations, then build its pools and queues."

    def handle(self, *args: Any, **options: Any) -> None:
        refuse_in_production("seed_demo_content")
        began = time.monotonic()
        seeded = seed_demo_content()
        pools = ", ".join(f"{r.ranker_key}/{r.platform} {r.pool_size}" for r in seeded.refreshed)
        personalized = sum(r.personalized for r in seeded.refreshed)
        self.stdout.write(
            f"Demo content: {seeded.sources} sources, {seeded.new_posts} new posts; pools: {pools}; "
            f"{personalized} personalized queues ({time.monotonic() - began:.1f} s)"
        )
