"""Backfill by hand: make the renditions of instances that have none (or finish the pending ones).

The beat entry `make-missing-renditions` does the same every few minutes through the broker;
this command can also render in this process (--here), without a worker."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from studies.models import Instance
from viewer.models import State
from viewer.services import queue_missing, render_instance


class Command(BaseCommand):
    help = "Queue (or, with --here, make) the renditions of instances that have none yet."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--here", action="store_true", help="render in this process, not the worker")
        parser.add_argument("--limit", type=int, default=10_000)

    def handle(self, *args: Any, here: bool = False, limit: int = 10_000, **options: Any) -> None:
        if not here:
            queued = queue_missing(older_than_s=0, limit=limit)
            self.stdout.write(f"{len(queued)} instances queued")
            return
        pending = (
            Instance.objects.exclude(viewer_image__state__in=[State.DONE, State.FAILED])
            .order_by("pk")
            .values_list("pk", flat=True)[:limit]
        )
        counts: dict[str, int] = {}
        for pk in pending:
            image = render_instance(pk)
            state = image.state if image else "gone"
            counts[state] = counts.get(state, 0) + 1
        self.stdout.write(" ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "nothing to do")
