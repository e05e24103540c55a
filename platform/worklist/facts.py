"""The one writer of a study's ranking facts (Study.waiting_since, ai_urgency, ai_critical).

They are copies, kept so that the database ranks the open cases from one index (see
worklist/selectors.py); the truth stays where it was: the study's history (its last `received`
event) and its current pre-read. They are written here only, at the two moments they change:
- a `received` event is recorded (studies.lifecycle._record creates it): waiting_since = its time;
- a pre-read is saved (preread.services makes a run current by saving it): the AI facts;
- a provisional pre-read of a preview is saved (preread.provisional): while the study has no
  current pre-read, the most urgent provisional score ranks it (a study still arriving); the
  current pre-read of the full images replaces it as soon as there is one (docs/worklist.md).
Both receivers run inside the writer's transaction, so the copy commits with what it copies.
`rebuild_ranking_facts()` recomputes them from the truth for any set of studies (the migration
that added them, bulk-made data, a repair); tests check copy and truth agree.
"""

from __future__ import annotations

from typing import Any

from django.db.models import BooleanField, Case, Exists, FloatField, OuterRef, QuerySet, Subquery, When
from django.db.models.signals import post_delete, post_save

from preread.models import Outcome, PreRead, ProvisionalPreRead
from studies.models import Status, Study, StudyEvent


def _last_received() -> QuerySet[StudyEvent]:
    return StudyEvent.objects.filter(study=OuterRef("pk"), to_status=Status.RECEIVED).order_by("-at")


def _current_scored() -> QuerySet[PreRead]:
    return PreRead.objects.filter(study=OuterRef("pk"), is_current=True, status=Outcome.SCORED)


def _current() -> QuerySet[PreRead]:
    return PreRead.objects.filter(study=OuterRef("pk"), is_current=True)


def _provisional_scored() -> QuerySet[ProvisionalPreRead]:
    return ProvisionalPreRead.objects.filter(study=OuterRef("pk"), status=Outcome.SCORED).order_by("-urgency")


def rebuild_ranking_facts(studies: QuerySet[Study] | None = None) -> int:
    """Recompute the facts of `studies` (all by default) from history and pre-reads: one UPDATE."""
    final = Exists(_current())
    return (Study.objects.all() if studies is None else studies).update(
        waiting_since=Subquery(_last_received().values("at")[:1]),
        ai_urgency=Case(
            When(final, then=Subquery(_current_scored().values("urgency")[:1])),
            default=Subquery(_provisional_scored().values("urgency")[:1]),
            output_field=FloatField(),
        ),
        ai_critical=Case(
            When(final, then=Exists(_current_scored().exclude(critical_flags=[]))),
            default=Exists(_provisional_scored().exclude(critical_flags=[])),
            output_field=BooleanField(),
        ),
    )


def refresh_ai_facts(study_id: int) -> None:
    rebuild_ranking_facts(Study.objects.filter(pk=study_id))


def _on_event(sender: type[StudyEvent], instance: StudyEvent, created: bool, **_: Any) -> None:
    if created and instance.to_status == Status.RECEIVED:
        Study.objects.filter(pk=instance.study_id).update(waiting_since=instance.at)


def _on_preread(sender: type[PreRead], instance: PreRead, **_: Any) -> None:
    refresh_ai_facts(instance.study_id)


def _on_provisional(sender: type[ProvisionalPreRead], instance: ProvisionalPreRead, **_: Any) -> None:
    refresh_ai_facts(instance.study_id)


def connect() -> None:
    post_save.connect(_on_provisional, sender=ProvisionalPreRead, dispatch_uid="worklist.facts.provisional")
    post_save.connect(_on_event, sender=StudyEvent, dispatch_uid="worklist.facts.event")
    post_save.connect(_on_preread, sender=PreRead, dispatch_uid="worklist.facts.preread")
    post_delete.connect(_on_preread, sender=PreRead, dispatch_uid="worklist.facts.preread_deleted")
