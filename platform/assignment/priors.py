"""Priors across sites: patient records a person confirmed as the same patient, and the
suggestions (same name, sex and birth date at another site) still waiting for a verdict."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from accounts.models import User
from studies import access, selectors
from studies.models import Study

from .models import PatientLink

Record = tuple[int, str]  # (site id, PatientID): a patient record as one site knows it


@dataclass(frozen=True)
class Suggestion:
    """Another site's record that may be this patient: one of its studies stands for it."""

    study: Study
    studies: int


def record_of(study: Study) -> Record | None:
    return (study.site_id, study.patient_id) if study.site_id and study.patient_id else None


def _ordered(a: Record, b: Record) -> tuple[Record, Record]:
    return (a, b) if a <= b else (b, a)


def _links_of(record: Record) -> QuerySet[PatientLink]:
    site_id, patient_id = record
    return PatientLink.objects.filter(
        Q(site_a_id=site_id, patient_id_a=patient_id) | Q(site_b_id=site_id, patient_id_b=patient_id)
    )


def linked_records(study: Study) -> list[Record]:
    """Records confirmed as the same patient as this study's (one hop: links are made by people
    looking at two records, not inferred through a third)."""
    record = record_of(study)
    if record is None:
        return []
    out = []
    for link in _links_of(record).filter(verdict=PatientLink.Verdict.SAME):
        a = (link.site_a_id, link.patient_id_a)
        out.append((link.site_b_id, link.patient_id_b) if a == record else a)
    return out


def priors_for(study: Study, *, user: User) -> list[Study]:
    return selectors.priors_of(study, user=user, linked=linked_records(study))


def suggestions_for(study: Study, *, user: User) -> list[Suggestion]:
    """Other sites' records with this patient's name, sex and birth date that nobody has judged."""
    record = record_of(study)
    if record is None:
        return []
    judged: set[Record] = set()
    for link in _links_of(record):
        judged |= {(link.site_a_id, link.patient_id_a), (link.site_b_id, link.patient_id_b)}
    first: dict[Record, Study] = {}
    count: dict[Record, int] = {}
    for other in selectors.same_person_elsewhere(study, user=user)[:50]:
        key = record_of(other)
        if key is not None and key not in judged:
            first.setdefault(key, other)
            count[key] = count.get(key, 0) + 1
    return [Suggestion(study=first[key], studies=count[key]) for key in first]


def judge_same_patient(study: Study, other: Study, *, same: bool, by: User) -> PatientLink | None:
    """Record a person's verdict on two records; None when the pair cannot be linked (same
    site, no PatientID, or a verdict already given)."""
    a, b = record_of(study), record_of(other)
    if a is None or b is None or a[0] == b[0] or not access.may_link_patients(by, study, other):
        return None
    (site_a, pid_a), (site_b, pid_b) = _ordered(a, b)
    verdict = PatientLink.Verdict.SAME if same else PatientLink.Verdict.DIFFERENT
    try:
        with transaction.atomic():
            return PatientLink.objects.create(
                site_a_id=site_a,
                patient_id_a=pid_a,
                site_b_id=site_b,
                patient_id_b=pid_b,
                verdict=verdict,
                decided_by=by,
            )
    except IntegrityError:
        return None  # already judged (by someone else, just now)
