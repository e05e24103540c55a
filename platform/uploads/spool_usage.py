"""The resumable uploads' share of a site's spool, as ingest.quota asks for it (registered at start)."""

from __future__ import annotations

from typing import Any

from django.db.models import Sum

from .models import Transfer


class OpenTransfers:
    """ingest.quota.OpenUploads over the Transfer table."""

    def received_bytes(self, site_id: int, exclude_transfer: Any = None) -> int:
        transfers = Transfer.objects.filter(submission__site_id=site_id, state__in=Transfer.OPEN_STATES)
        if exclude_transfer is not None:
            transfers = transfers.exclude(pk=exclude_transfer)
        return int(transfers.aggregate(total=Sum("offset"))["total"] or 0)

    def open_count(self, user: Any) -> int:
        return Transfer.objects.filter(state=Transfer.State.RECEIVING, submission__sender=user).count()

    def __eq__(self, other: object) -> bool:  # one registration however often ready() runs
        return isinstance(other, OpenTransfers)

    def __hash__(self) -> int:
        return hash(OpenTransfers)
