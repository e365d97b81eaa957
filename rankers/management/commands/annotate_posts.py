"""``manage.py annotate_posts``: the annotation beat job by hand, in this process.

manage.py annotate_posts                   # open rows for new posts, LLM batches until none wait, then classify
manage.py annotate_posts --llm --limit 50  # at most 50 posts through the LLM, no classification
manage.py annotate_posts --classify        # embeddings, civic and toxicity only
manage.py annotate_posts --retry-failed    # put failed posts back in the LLM's queue first
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rankers.content import annotating


class Command(BaseCommand):
    help = "Annotate candidate posts now (LLM, then embeddings and classifiers) and print what was done."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--llm", action="store_true", help="Only the LLM annotation.")
        parser.add_argument("--classify", action="store_true", help="Only embeddings and classifiers.")
        parser.add_argument("--limit", type=int, help="At most this many posts through the LLM.")
        parser.add_argument("--retry-failed", action="store_true", help="Send failed posts to the LLM again.")

    def handle(self, *args: Any, **options: Any) -> None:
        both = not options["llm"] and not options["classify"]
        opened = annotating.open_annotations()
        self.stdout.write(f"{opened} new posts wait for annotation")
        if options["retry_failed"]:
            self.stdout.write(f"{annotating.retry_failed()} failed posts put back in the LLM's queue")
        if options["llm"] or both:
            self._llm(options["limit"])
        if options["classify"] or both:
            classified = 0
            while chunks := annotating.unclassified_chunks(1):
                classified += annotating.classify_posts(chunks[0])
            self.stdout.write(f"classified {classified} posts")

    def _llm(self, limit: int | None) -> None:
        left = limit
        annotated = failed = 0
        while left is None or left > 0:
            size = settings.PRC_ANNOTATION_BATCH_SIZE
            result = annotating.annotate_llm_batch(limit=size if left is None else min(left, size))
            annotated, failed = annotated + result.annotated, failed + result.failed
            if result.stopped:
                self.stdout.write(f"LLM: annotated {annotated}, failed {failed}")
                raise CommandError(f"annotation stopped: {result.stopped}")
            done = result.annotated + result.failed + result.returned
            if not done:
                break
            left = None if left is None else left - done
        self.stdout.write(f"LLM: annotated {annotated}, failed {failed}")
