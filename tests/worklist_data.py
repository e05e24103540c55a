"""Open cases made in bulk for worklist tests and the load benchmark: studies with their history
rows (the `received` event the wait is measured from) and current pre-reads, as the pipeline
leaves them. Bulk-created on purpose: the benchmark needs 10,000; every row is what
studies.lifecycle and preread.services would have written, and the ranking facts are then
rebuilt from them by worklist.facts."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction

MODALITIES = ("CR", "DX", "CT", "MR", "US")
PRIORITIES = ("routine", "routine", "routine", "urgent", "stat")


@dataclass(frozen=True)
class Spec:
    """One open case: its priority, how long it has waited, its AI outcome and status."""

    priority: str = "routine"
    minutes_ago: float = 0.0
    urgency: float | None = None  # None: no pre-read
    critical: bool = False
    ai_status: str = "scored"
    status: str = "queued"
    modality: str = "CR"
    site: object | None = None
    received: bool = True  # False: still arriving (no `received` event yet)
    assigned_to: object | None = None


def event(study, transition: str, before: str, after: str, at: datetime, reader=None):
    from studies.models import StudyEvent

    return StudyEvent(study=study, transition=transition, from_status=before, to_status=after,
                      actor=reader, assignee=reader, at=at)  # fmt: skip


def make_cases(specs: list[Spec], *, now: datetime, default_site=None) -> list:
    """Create the studies of `specs` (in that order) and return them."""
    from preread.models import PreRead
    from studies.models import Study, StudyEvent
    from worklist.facts import rebuild_ranking_facts

    tag = uuid.uuid4().hex[:10]
    with transaction.atomic():
        studies = Study.objects.bulk_create(
            [
                Study(
                    orthanc_id=f"bench-{tag}-{i}",
                    study_instance_uid=f"2.25.{int(tag, 16)}.{i}",
                    site=s.site or default_site,
                    modality=s.modality,
                    description=f"{s.modality} examen {i}",
                    patient_name=f"PATIENT^{i}",
                    indication="Toux, fièvre depuis trois jours",
                    priority=s.priority,
                    status=s.status if s.received else "arriving",
                    assigned_to=s.assigned_to,
                )
                for i, s in enumerate(specs)
            ],
            batch_size=2000,
        )
        # Each study was created a few minutes before it was complete (or, still arriving, when
        # its first file came), so an arriving study waits from then, as in life.
        for study, s in zip(studies, specs, strict=True):
            study.created_at = now - timedelta(minutes=s.minutes_ago + 3)
        Study.objects.bulk_update(studies, ["created_at"], batch_size=2000)
        events = []
        for study, s in zip(studies, specs, strict=True):
            at = now - timedelta(minutes=s.minutes_ago)
            first = "arrive" if not s.received else "receive"
            events.append(
                StudyEvent(
                    study=study,
                    transition=first,
                    from_status="",
                    to_status="arriving" if not s.received else "received",
                    at=study.created_at,
                )
            )
            if s.received:
                # A study received twice (returned, sent again) waits since the last one.
                events.append(event(study, "receive", "arriving", "received", at))
                if s.status in ("queued", "in_reading"):
                    events.append(event(study, "queue", "received", "queued", at + timedelta(seconds=40)))
                if s.status == "in_reading":
                    claimed = at + timedelta(minutes=1)
                    events.append(event(study, "claim", "queued", "in_reading", claimed, s.assigned_to))
        StudyEvent.objects.bulk_create(events, batch_size=5000)
        prereads = []
        for study, s in zip(studies, specs, strict=True):
            if s.urgency is None and s.ai_status == "scored":
                continue
            # An older run, no longer current, that must not count.
            prereads.append(PreRead(study=study, models_key="old", status="scored", is_current=False,
                                    urgency=1.0, critical_flags=["Pneumothorax"]))  # fmt: skip
            prereads.append(
                PreRead(
                    study=study,
                    models_key="current",
                    status=s.ai_status,
                    is_current=True,
                    urgency=s.urgency,
                    critical_flags=["Pneumothorax"] if s.critical else [],
                    model_name="bench",
                    model_version="1",
                )
            )
        PreRead.objects.bulk_create(prereads, batch_size=5000)
        # bulk_create sends no signals: the ranking facts are rebuilt from what was made.
        rebuild_ranking_facts(Study.objects.filter(pk__in=[st.pk for st in studies]))
    return studies


def random_specs(n: int, *, seed: int = 8, sites=(), radiologists=()) -> list[Spec]:
    """A varied backlog: mostly routine, some urgent and STAT, waits from seconds to days, AI
    scores on most, some refused or critical, a few arriving or already in reading."""
    rng = random.Random(seed)
    specs = []
    for _ in range(n):
        r = rng.random()
        status = "in_reading" if r < 0.05 and radiologists else "received" if r < 0.15 else "queued"
        ai = rng.random()
        specs.append(
            Spec(
                priority=rng.choice(PRIORITIES),
                minutes_ago=rng.choice([rng.uniform(0, 60), rng.uniform(0, 600), rng.uniform(0, 5000)]),
                urgency=None if ai < 0.2 else round(rng.random(), 3),
                critical=ai > 0.93,
                ai_status="refused" if 0.2 <= ai < 0.25 else "scored",
                status=status,
                modality=rng.choice(MODALITIES),
                site=rng.choice(sites) if sites else None,
                received=rng.random() > 0.02,
                assigned_to=rng.choice(radiologists) if status == "in_reading" else None,
            )
        )
    return specs
