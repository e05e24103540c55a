"""What the alerts tests share: an on-call chain of real people, studies at a given point of their
life, and a critical pre-read as the pre-read app stores it."""

from __future__ import annotations

import uuid

from django.db import transaction

from alerts.models import Alert, OnCallEntry
from studies import lifecycle
from studies.lifecycle import Transition
from studies.models import Study

PHONES = {"dr_a": "+22370000001", "dr_b": "+22370000002", "admin_a": "+22370000009", "site": "+22321000000"}


def on_call_chain(radiologist, radiologist_2, admin_user, *, emails: bool = True) -> None:
    """dr_a first, then dr_b, then the coordinator (each with a phone, and an email unless told not)."""
    for user in (radiologist, radiologist_2, admin_user):
        user.phone = PHONES[user.username]
        user.email = f"{user.username}@example.org" if emails else ""
        user.save()
    OnCallEntry.objects.create(user=radiologist, role="radiologist", position=0)
    OnCallEntry.objects.create(user=radiologist_2, role="radiologist", position=1)
    OnCallEntry.objects.create(user=admin_user, role="coordinator", position=0)


def new_study(site, *, uploader=None, priority: str = "routine", event: str = Transition.RECEIVE) -> Study:
    return lifecycle.create_study(
        event=event,
        orthanc_id=uuid.uuid4().hex,
        study_instance_uid="2.25." + str(uuid.uuid4().int),
        site=site,
        uploaded_by=uploader,
        priority=priority,
        modality="CR",
        patient_name="DIARRA^AMINATA",
        patient_id="PID-777",
    )


def critical_preread(study: Study, flags=("pneumothorax",)) -> None:
    """A finished, current pre-read with critical flags, as preread.services leaves it."""
    from preread.models import Outcome, PreRead

    PreRead.objects.create(
        study=study,
        models_key=uuid.uuid4().hex,
        status=Outcome.SCORED,
        is_current=True,
        model_name="demo-cxr",
        model_version="1",
        urgency=0.97,
        critical_flags=list(flags),
        flag_names={f: {"fr": "pneumothorax", "en": "pneumothorax"} for f in flags},
    )


def critical_case(site, **kwargs) -> Study:
    """A study complete, pre-read with a critical flag and queued, in one commit (as when the
    pre-read finishes): the pre-read task the commit enqueues then finds it queued and does nothing,
    so a test's worker never races the test for the move."""
    with transaction.atomic():
        study = new_study(site, **kwargs)
        critical_preread(study)
        return lifecycle.transition(study, Transition.QUEUE)


def alerts_of(study: Study, **filters) -> list[Alert]:
    return list(Alert.objects.filter(study=study, **filters).order_by("step", "channel", "pk"))
