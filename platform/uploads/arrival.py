"""How far a study still arriving has come: the share of its bytes received and when it should
be complete, from its manifest's declared sizes and the receive rate of its own transfers.

The preview's bytes are not the study's: left out of both the total and the count.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Max, Min, Sum
from django.utils import timezone

from .models import StudyManifest, Transfer

GONE = (Transfer.State.EXPIRED, Transfer.State.TERMINATED)  # their bytes were thrown away


@dataclass(frozen=True)
class ArrivalProgress:
    bytes_received: int
    bytes_total: int | None  # None: the site announced a file count, not sizes
    rate_bps: float | None  # bytes per second observed on this study's transfers
    eta_seconds: float | None  # None while the rate or the total is unknown

    @property
    def share(self) -> float | None:
        if not self.bytes_total:
            return None
        return min(self.bytes_received / self.bytes_total, 1.0)


def arrival_progress(study_uids: Iterable[str], *, now: datetime | None = None) -> dict[str, ArrivalProgress]:
    """Per Study Instance UID, the progress of its newest unsettled manifest (none: left out)."""
    now = now or timezone.now()
    manifests: dict[str, StudyManifest] = {}
    for manifest in (
        StudyManifest.objects.filter(study_instance_uid__in=list(study_uids), submission__settled_at=None)
        .only("pk", "study_instance_uid", "expected", "submission_id", "created_at")
        .order_by("created_at")
    ):
        manifests[manifest.study_instance_uid] = manifest  # the newest wins
    return {uid: _progress(m, now) for uid, m in manifests.items()}


def _progress(manifest: StudyManifest, now: datetime) -> ArrivalProgress:
    sizes = [int(e.get("size") or 0) for e in manifest.expected]
    total = sum(sizes) if sizes and all(sizes) else None
    seen = (
        Transfer.objects.filter(submission_id=manifest.submission_id)
        .exclude(kind=Transfer.Kind.PREVIEW)
        .exclude(state__in=GONE)
        .aggregate(received=Sum("offset"), first=Min("created_at"), last=Max("updated_at"))
    )
    received = int(seen["received"] or 0)
    rate = None
    if received and seen["first"] is not None:
        elapsed = (max(seen["last"] or now, seen["first"]) - seen["first"]).total_seconds()
        rate = received / elapsed if elapsed >= 1 else None
    eta = None
    if total is not None and rate:
        eta = max(total - received, 0) / rate
    return ArrivalProgress(bytes_received=received, bytes_total=total, rate_bps=rate, eta_seconds=eta)
