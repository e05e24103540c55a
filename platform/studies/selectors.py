"""Reads of the studies app that other apps use (they never query Study rows for decisions
the studies app owns)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from siteagent.compression import stand_in_uid
from siteagent.preview import preview_uid

from . import access
from .models import Instance, Study


@dataclass(frozen=True)
class KnownStudy:
    pk: int
    site_id: int | None
    status: str


def known_study(study_instance_uid: str) -> KnownStudy | None:
    return known_studies([study_instance_uid]).get(study_instance_uid)


def known_studies(study_instance_uids: Iterable[str]) -> dict[str, KnownStudy]:
    """The platform's studies among these UIDs, by UID, in one query."""
    rows = Study.objects.filter(study_instance_uid__in=set(study_instance_uids)).values_list(
        "study_instance_uid", "pk", "site_id", "status"
    )
    return {uid: KnownStudy(pk=pk, site_id=site_id, status=status) for uid, pk, site_id, status in rows}


def study_of_instance(sop_instance_uid: str) -> str | None:
    """The StudyInstanceUID an instance is recorded under, or None if unknown."""
    return studies_of_instances([sop_instance_uid]).get(sop_instance_uid)


def studies_of_instances(sop_instance_uids: Iterable[str]) -> dict[str, str]:
    """The StudyInstanceUID each of these instances is recorded under (the unknown ones left
    out), in one query."""
    return dict(
        Instance.objects.filter(sop_instance_uid__in=set(sop_instance_uids)).values_list(
            "sop_instance_uid", "study__study_instance_uid"
        )
    )


def recorded_and_stand_in(
    *, study_instance_uid: str, sop_instance_uid: str, site_id: int | None
) -> tuple[Instance | None, Instance | None]:
    """In one query: the instance recorded under `sop_instance_uid` (with its study), and the
    lossy stand-in that this original replaces (lossy_stand_in's rule), each or None."""
    stand_in = stand_in_uid(sop_instance_uid)
    rows = {
        row.sop_instance_uid: row
        for row in Instance.objects.select_related("study").filter(
            sop_instance_uid__in=(sop_instance_uid, stand_in)
        )
    }
    candidate = rows.get(stand_in)
    if (
        candidate is None
        or site_id is None
        or not candidate.lossy
        or candidate.study.study_instance_uid != study_instance_uid
        or candidate.study.site_id != site_id
    ):
        candidate = None
    return rows.get(sop_instance_uid), candidate


def lossy_stand_in(*, study_instance_uid: str, sop_instance_uid: str, site_id: int | None) -> Instance | None:
    """The lossy stand-in that the original `sop_instance_uid` replaces, if this site sent one.

    Lossy first, lossless after (docs/ingest-protocol.md): the stand-in's UID is derived from
    the original's (siteagent.compression.stand_in_uid), so the pair is recognised without
    trusting what the file says; it must be lossy, in the same study, and that study must be
    the sending site's own. Anything else is an ordinary new instance."""
    if site_id is None:
        return None
    return recorded_and_stand_in(
        study_instance_uid=study_instance_uid, sop_instance_uid=sop_instance_uid, site_id=site_id
    )[1]


def has_original_of(study: Study, *, stand_in_sop_instance_uid: str, site_id: int | None) -> bool:
    """The study, this site's, already has the lossless original of this lossy stand-in."""
    if site_id is None or study.site_id != site_id:
        return False
    full = study.instances.filter(lossy=False).values_list("sop_instance_uid", flat=True)
    return any(stand_in_uid(uid) == stand_in_sop_instance_uid for uid in full)


def has_lossy_images(study: Study) -> bool:
    """Some image of the study is lossy now (a report signed now says so): a stand-in not yet
    replaced, or an image sent lossy. The agent's preview of an image the study has in full
    does not count: the radiologist has the image itself."""
    lossy = set(study.instances.filter(lossy=True).values_list("sop_instance_uid", flat=True))
    if not lossy:
        return False
    full = study.instances.filter(lossy=False).values_list("sop_instance_uid", flat=True)
    return bool(lossy - {preview_uid(uid) for uid in full})


def instances_in_archive(sop_instance_uids: list[str]) -> set[str]:
    """Those of these instances that Orthanc has acknowledged (a row is written after the store)."""
    return set(
        Instance.objects.filter(sop_instance_uid__in=sop_instance_uids).values_list(
            "sop_instance_uid", flat=True
        )
    )


def priors_of(study: Study, *, user: access.Person, linked: Iterable[tuple[int, str]] = ()) -> list[Study]:
    """Earlier studies of the same patient that `user` may see: same site and PatientID, or a
    patient record (site id, PatientID) a person confirmed as the same patient (`linked`).
    Newest first."""
    same = Q(pk__in=[])
    if study.patient_id and study.site_id:
        same |= Q(site_id=study.site_id, patient_id=study.patient_id)
    for site_id, patient_id in linked:
        if patient_id:
            same |= Q(site_id=site_id, patient_id=patient_id)
    earlier = Q(created_at__lt=study.created_at)
    if study.study_date:  # acquired earlier, even if it reached us later
        earlier |= Q(study_date__lt=study.study_date) & ~Q(study_date="")
    return list(
        access.studies_visible_to(user)
        .filter(same)
        .filter(earlier)
        .exclude(pk=study.pk)
        .select_related("site")
        .order_by("-study_date", "-created_at")[:20]
    )


def same_person_elsewhere(study: Study, *, user: access.Person) -> QuerySet[Study]:
    """Studies of other sites whose patient has the same name, sex and birth date: candidates
    for a person to confirm as the same patient (never linked automatically)."""
    if not (study.patient_name.strip() and study.patient_birth_date.strip() and study.patient_sex.strip()):
        return Study.objects.none()
    return (
        access.studies_visible_to(user)
        .filter(
            patient_name__iexact=study.patient_name.strip(),
            patient_sex__iexact=study.patient_sex.strip(),
            patient_birth_date=study.patient_birth_date.strip(),
            site__isnull=False,
        )
        .exclude(site=study.site)
        .exclude(patient_id="")
        .select_related("site")
        .order_by("site_id", "patient_id", "-created_at")
    )
