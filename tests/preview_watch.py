"""When does a study still arriving show in the worklist with its provisional score?

For tests and the upload benchmark (tests/benchmarks/upload_slow_link.py): read the worklist
page as a radiologist reads it — the row's data attributes, not its sentences, so the language
does not matter — and time the first moment the urgent case is visible.

    seen = wait_visible(client, lambda: Study.objects.filter(study_instance_uid=uid).first())
    seen.elapsed_s, seen.provisional, seen.received_percent
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.urls import reverse

ROW = re.compile(r'<tr class="case" data-study="(?P<pk>\d+)"(?P<attrs>[^>]*)>')
ATTR = re.compile(r'data-(provisional|received)="([^"]*)"')


@dataclass(frozen=True)
class Visible:
    study_pk: int
    provisional: float  # the provisional urgency the row shows
    received_percent: int | None  # the share of the study's bytes in, as the row shows it
    elapsed_s: float  # since wait_visible was called


def arriving_row(client: Any, study_pk: int) -> dict[str, str] | None:
    """The data attributes of `study_pk`'s worklist row (None: not on the first page)."""
    page = client.get(reverse("worklist"))
    html = page.content.decode()
    for found in ROW.finditer(html):
        if int(found["pk"]) == study_pk:
            return dict(ATTR.findall(found["attrs"]))
    return None


def wait_visible(
    client: Any, study: Callable[[], Any], *, timeout: float = 60, interval: float = 0.2
) -> Visible | None:
    """Poll until the study (`study()` returns it, or None while it is unknown) shows in the
    worklist with a provisional score; None if it does not within `timeout`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        found = study()
        if found is not None:
            row = arriving_row(client, found.pk)
            if row and row.get("provisional"):
                received = row.get("received")
                return Visible(
                    study_pk=found.pk,
                    provisional=float(row["provisional"]),
                    received_percent=int(received) if received else None,
                    elapsed_s=time.monotonic() - start,
                )
        time.sleep(interval)
    return None
