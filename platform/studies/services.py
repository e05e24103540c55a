"""Writes of the studies app: recording what reached the archive. Other apps call these; they
never create or update Study/Instance rows themselves. Status changes: studies.lifecycle."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.dispatch import Signal

from orthanc.client import OrthancError

from . import lifecycle
from .archive import get_archive
from .lifecycle import Transition
from .models import Instance, Priority, Source, Status, Study
from .selectors import has_original_of, recorded_and_stand_in

log = logging.getLogger(__name__)

# Sent once the transaction recording a new instance has committed, with `instance_id` and
# `study_id` (primary keys only): the viewer makes its renditions then. studies never imports
# the apps that listen.
instance_recorded = Signal()


@dataclass(frozen=True)
class Arrival:
    """Who sent a study and why: the sender's intent, attached to the study when it is created."""

    site_id: int | None = None
    sender_id: int | None = None
    priority: str = Priority.ROUTINE
    indication: str = ""
    source: str = Source.UPLOAD
    expected_instances: int | None = None


@dataclass(frozen=True)
class Recorded:
    # As the recording left it: its own fields, status and sender are current; facts other apps
    # keep on the row (the worklist's ranking facts) are not read again.
    study: Study
    study_created: bool
    instance_created: bool
    replaced_stand_in: bool = False  # the lossless original took its lossy stand-in's place


class InstanceConflict(Exception):
    """The SOP Instance UID is already recorded under another study."""


def study_facts(facts: dict[str, str]) -> dict[str, str]:
    """Study fields from the DICOM facts of one of its instances."""
    return {
        "patient_name": facts.get("PatientName", "")[:200],
        "patient_id": facts.get("PatientID", "")[:64],
        "patient_sex": facts.get("PatientSex", "")[:16],
        "patient_birth_date": facts.get("PatientBirthDate", "")[:8],
        "accession_number": facts.get("AccessionNumber", "")[:64],
        "modality": facts.get("Modality", "")[:64],
        "body_part": facts.get("BodyPartExamined", "")[:64],
        "description": facts.get("StudyDescription", "")[:200],
        "study_date": facts.get("StudyDate", "")[:8],
        "institution": facts.get("InstitutionName", "")[:200],
    }


def record_instance(
    *,
    facts: dict[str, str],
    orthanc_instance_id: str,
    orthanc_study_id: str,
    arrival: Arrival,
    complete: bool,
) -> Recorded:
    """Upsert the study and the instance once Orthanc has stored it.

    Idempotent: the same instance recorded twice (a retried upload, the changes feed catching up)
    leaves one row. A new study starts `received` when `complete`, else `arriving` (it becomes
    received through mark_complete). An instance whose SOP Instance UID belongs to another
    study raises InstanceConflict and records nothing. An instance reaching a study already
    reported reopens it, so the new images are read.
    """
    study_uid, sop_uid = facts["StudyInstanceUID"], facts["SOPInstanceUID"]
    lossy = facts.get("LossyImageCompression", "") == "01"
    with transaction.atomic():
        study = Study.objects.select_for_update().filter(study_instance_uid=study_uid).first()
        # Read under the study's lock (when it exists): a concurrent recorder of its instances waits.
        existing, stand_in = recorded_and_stand_in(
            study_instance_uid=study_uid, sop_instance_uid=sop_uid, site_id=arrival.site_id
        )
        if existing is not None and existing.study.study_instance_uid != study_uid:
            raise InstanceConflict(sop_uid)
        created = study is None
        if study is None:
            try:
                with transaction.atomic():
                    study = lifecycle.create_study(
                        event=Transition.RECEIVE if complete else Transition.ARRIVE,
                        study_instance_uid=study_uid,
                        orthanc_id=orthanc_study_id,
                        **study_facts(facts),
                        **_arrival_fields(arrival),
                    )
            except IntegrityError:  # created meanwhile by a concurrent recorder: use theirs
                created = False
                study = Study.objects.select_for_update().get(study_instance_uid=study_uid)
        if not created and study.orthanc_id != orthanc_study_id and not study.instances.exists():
            # Announced by its preview with the id Orthanc was expected to give: the archive's
            # answer for its first image is the truth.
            Study.objects.filter(pk=study.pk).update(orthanc_id=orthanc_study_id)
            study.orthanc_id = orthanc_study_id
        if lossy or created or existing is not None:
            stand_in = None  # only a lossless original recorded now takes a stand-in's place
        if stand_in is not None:
            # Its renditions and AI results go with it; the original's come as for any new image.
            stale = stand_in.orthanc_id
            stand_in.delete()
            transaction.on_commit(lambda: _forget_in_archive(stale))
        if (
            lossy
            and not created
            and existing is None
            and has_original_of(study, stand_in_sop_instance_uid=sop_uid, site_id=arrival.site_id)
        ):
            # A stand-in that comes after its original (its sending was slower): the study has the
            # image in full; the stand-in leaves the archive and is reported a duplicate.
            transaction.on_commit(lambda: _forget_in_archive(orthanc_instance_id))
            return Recorded(study=study, study_created=False, instance_created=False)
        instance = (
            None if existing is not None else _create_instance(study, facts, orthanc_instance_id, lossy)
        )
        instance_created = instance is not None
        if instance_created and not created and stand_in is None:
            # (An original replacing its stand-in is not a new image: a report stays signed.)
            _take_new_image(study, arrival=arrival, complete=complete)
        if instance is not None:
            instance_id, study_id = instance.pk, study.pk
            transaction.on_commit(
                lambda: instance_recorded.send(Instance, instance_id=instance_id, study_id=study_id)
            )
    return Recorded(
        study=study,
        study_created=created,
        instance_created=instance_created,
        replaced_stand_in=stand_in is not None and instance_created,
    )


def _create_instance(
    study: Study, facts: dict[str, str], orthanc_instance_id: str, lossy: bool
) -> Instance | None:
    """The instance's row, or None if a concurrent recorder wrote it first."""
    number = facts.get("InstanceNumber", "")
    try:
        with transaction.atomic():
            return Instance.objects.create(
                sop_instance_uid=facts["SOPInstanceUID"],
                study=study,
                series_instance_uid=facts.get("SeriesInstanceUID", ""),
                orthanc_id=orthanc_instance_id,
                instance_number=int(number) if number.lstrip("-").isdigit() else None,
                modality=facts.get("Modality", "")[:16],
                lossy=lossy,
                lossy_ratio=facts.get("LossyImageCompressionRatio", "")[:64],
                lossy_method=facts.get("LossyImageCompressionMethod", "")[:64],
            )
    except IntegrityError:
        return None


def _forget_in_archive(orthanc_id: str) -> None:
    """The replaced stand-in leaves the archive; if Orthanc is down it stays there, unrecorded
    (no study points to it, the viewer never shows it) and is logged."""
    try:
        get_archive().delete_instance(orthanc_id)
    except OrthancError as exc:
        log.warning("replaced lossy stand-in %s still in the archive: %s", orthanc_id, exc)


def announce_study(*, facts: dict[str, str], orthanc_study_id: str, arrival: Arrival) -> Study:
    """The study a site announced (by its preview) before any of its images is in the archive:
    created `arriving` if new (the first image then finds it), else returned as it is.

    `orthanc_study_id` is the id Orthanc will give the study (computed from PatientID and the
    Study Instance UID), so the row points at the right archive study once its images land.
    """
    study_uid = facts["StudyInstanceUID"]
    study = Study.objects.filter(study_instance_uid=study_uid).first()
    if study is not None:
        return study
    try:
        with transaction.atomic():
            return lifecycle.create_study(
                event=Transition.ARRIVE,
                study_instance_uid=study_uid,
                orthanc_id=orthanc_study_id,
                **study_facts(facts),
                **_arrival_fields(arrival),
            )
    except IntegrityError:  # created meanwhile by its first image or another preview
        return Study.objects.get(study_instance_uid=study_uid)


def _arrival_fields(arrival: Arrival) -> dict[str, Any]:
    return {
        "site_id": arrival.site_id,
        "uploaded_by_id": arrival.sender_id,
        "priority": arrival.priority,
        "indication": arrival.indication[:2000],
        "source": arrival.source,
        "expected_instances": arrival.expected_instances,
    }


def _take_new_image(study: Study, *, arrival: Arrival, complete: bool) -> None:
    """A new instance for a study the platform already has."""
    if study.status in lifecycle.CLOSED:
        # Images after the report would stay unread: back to the worklist as an addendum case.
        lifecycle.transition(study, Transition.REOPEN)
    elif study.status == Status.RETURNED:
        # The site repeats a study the radiologist returned as not diagnostic.
        lifecycle.transition(study, Transition.RECEIVE if complete else Transition.ARRIVE)
    attribute_to_sender(study, arrival)


def mark_complete(study: Study) -> Study:
    """Every announced instance is in (or refused): the study may now be read."""
    if study.status == Status.ARRIVING:
        try:
            return lifecycle.transition(study, Transition.RECEIVE)
        except lifecycle.TransitionRefused:  # completed meanwhile by another finaliser
            study.refresh_from_db()
    return study


def attribute_to_sender(study: Study, arrival: Arrival) -> None:
    """Give a study recorded without a sender (seen first from the archive) its sender's intent."""
    # A study's site is never taken away: one it has (read under the recorder's lock or just
    # after) needs no statement.
    if arrival.site_id is not None and study.site_id is None:
        fields = _arrival_fields(arrival)
        if Study.objects.filter(pk=study.pk, site=None).update(**fields):
            for name, value in fields.items():
                setattr(study, name, value)
