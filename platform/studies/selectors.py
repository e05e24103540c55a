"""Reads of the studies app that other apps use (they never query Study rows for decisions
the studies app owns)."""

from __future__ import annotations

from dataclasses import dataclass

from .models import Instance, Study


@dataclass(frozen=True)
class KnownStudy:
    pk: int
    site_id: int | None
    status: str


def known_study(study_instance_uid: str) -> KnownStudy | None:
    row = (
        Study.objects.filter(study_instance_uid=study_instance_uid).values("pk", "site_id", "status").first()
    )
    return KnownStudy(**row) if row else None


def study_of_instance(sop_instance_uid: str) -> str | None:
    """The StudyInstanceUID an instance is recorded under, or None if unknown."""
    return (
        Instance.objects.filter(sop_instance_uid=sop_instance_uid)
        .values_list("study__study_instance_uid", flat=True)
        .first()
    )


def instances_in_archive(sop_instance_uids: list[str]) -> set[str]:
    """Those of these instances that Orthanc has acknowledged (a row is written after the store)."""
    return set(
        Instance.objects.filter(sop_instance_uid__in=sop_instance_uids).values_list(
            "sop_instance_uid", flat=True
        )
    )
