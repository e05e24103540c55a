"""Cases about to breach their reading deadline with nobody on them (a periodic check)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, Subquery
from django.utils import timezone

from studies.models import Priority, Status, Study, StudyEvent
from worklist.ranking import DEFAULT_SLA_MINUTES

from . import recipients
from .models import Alert, Category, Kind
from .outbox import write_alerts
from .triggers import base_params

WAITING = (Status.RECEIVED, Status.QUEUED)


def sla_minutes(priority: str) -> float:
    slas = {**DEFAULT_SLA_MINUTES, **settings.WORKLIST_SLA_MINUTES}
    return float(slas.get(priority, slas["routine"]))


def check_sla(now: datetime | None = None) -> int:
    """One alert chain per wait (per `received` event) of a case nobody holds, when its SLA is near."""
    now = now or timezone.now()
    warn = timedelta(minutes=settings.ALERTS_SLA_WARNING_MINUTES)
    last_received = StudyEvent.objects.filter(study=OuterRef("pk"), to_status=Status.RECEIVED).order_by(
        "-at", "-pk"
    )
    near = Q()
    for priority in Priority.values:  # only the cases whose deadline is within the warning
        near |= Q(priority=priority, waiting_since__lte=now + warn - timedelta(minutes=sla_minutes(priority)))
    waiting = (
        Study.objects.filter(status__in=WAITING, assigned_to__isnull=True)
        .annotate(
            waiting_since=Subquery(last_received.values("at")[:1]),
            received_pk=Subquery(last_received.values("pk")[:1]),
        )
        .filter(near)
        .exclude(Exists(Alert.objects.filter(kind=Kind.SLA_BREACH, event_id=OuterRef("received_pk"))))
        .select_related("site")
    )
    raised = 0
    for study in waiting:
        received = StudyEvent.objects.get(pk=study.received_pk)
        deadline = received.at + timedelta(minutes=sla_minutes(study.priority))
        left = max(int((deadline - now).total_seconds() // 60), 0)
        created = write_alerts(
            kind=Kind.SLA_BREACH,
            category=Category.URGENT,
            chain=f"sla_breach:e{received.pk}",
            recipients=recipients.reading_chain()[:1],
            study=study,
            event=received,
            params={**base_params(study), "minutes": left},
            needs_ack=True,
        )
        raised += bool(created)
    return raised
