"""Study manifests: what a site announces of a study, and when the study counts as complete."""

from __future__ import annotations

from django.db import transaction

from accounts.models import User
from ingest.models import Submission
from ingest.services import settle
from ingest.verdicts import Outcome
from studies.access import may_see_sending, may_send_for_site
from studies.models import Priority
from studies.selectors import instances_in_archive

from .models import StudyManifest, Transfer
from .refusals import UploadRefused


def manifest_for(user: User, manifest_id: str | None, *, to_send: bool = False) -> StudyManifest:
    """The manifest if `user` may see it (`to_send`: may also send for it); else 404."""
    manifest = (
        StudyManifest.objects.select_related("submission").filter(pk=manifest_id).first()
        if manifest_id
        else None
    )
    if manifest is None:
        raise UploadRefused(404, "not_found")
    site_id = manifest.submission.site_id
    allowed = may_send_for_site(user, site_id) if to_send else may_see_sending(user, site_id=site_id)
    if not allowed:
        raise UploadRefused(404, "not_found")
    return manifest


def open_manifest(
    *,
    user: User,
    manifest_id: str | None,
    study_instance_uid: str = "",
    priority: str = Priority.ROUTINE,
    indication: str = "",
    expected: list[dict] | None = None,
    expected_files: int = 0,
) -> tuple[StudyManifest, bool]:
    """Create the manifest of a study, or return the one this site already sent under that id."""
    site_id = user.site_id
    if site_id is None or not may_send_for_site(user):
        raise UploadRefused(403, "forbidden")
    if manifest_id and StudyManifest.objects.filter(pk=manifest_id).exists():
        return manifest_for(user, manifest_id, to_send=True), False
    expected = expected or []
    expected_files = expected_files or len(expected)
    with transaction.atomic():
        submission = Submission.objects.create(
            site_id=site_id,
            sender=user,
            indication=indication,
            priority=priority,
            # The site sees the study arriving with its progress: n of this many.
            expected_instances=len(expected) or expected_files or None,
        )
        kwargs = {"pk": manifest_id} if manifest_id else {}
        manifest = StudyManifest.objects.create(
            submission=submission,
            study_instance_uid=study_instance_uid,
            expected=expected,
            expected_files=expected_files,
            **kwargs,
        )
    return manifest, True


def manifest_status(manifest: StudyManifest) -> dict:
    """What the centre has of a study: settled or not, which instances are still missing."""
    submission = Submission.objects.get(pk=manifest.submission_id)
    expected = [e["sop_instance_uid"] for e in manifest.expected]
    have = instances_in_archive(expected)
    verdicts = [
        {
            "filename": v.filename,
            "outcome": v.outcome,
            "code": v.code,
            "reason": v.reason,
            "sop_instance_uid": v.sop_instance_uid,
        }
        for v in submission.verdicts.all()
    ]
    return {
        "id": str(manifest.pk),
        "complete": submission.settled_at is not None,
        "missing": [uid for uid in expected if uid not in have],
        "study": submission.verdicts.exclude(study=None).values_list("study_id", flat=True).first(),
        "verdicts": verdicts,
        "open_uploads": Transfer.objects.filter(
            submission=submission, state__in=Transfer.OPEN_STATES
        ).count(),
    }


def settle_manifest(manifest: StudyManifest) -> bool:
    """Announce the study once every listed instance is in the archive (or refused with a reason)."""
    submission = Submission.objects.get(pk=manifest.submission_id)
    if submission.settled_at is not None:
        return True
    if manifest.expected:
        expected = {e["sop_instance_uid"] for e in manifest.expected}
        have = instances_in_archive(list(expected))
        refused = set(
            submission.verdicts.filter(outcome=Outcome.REFUSED).values_list("sop_instance_uid", flat=True)
        )
        settled = expected <= (have | refused)
    else:
        finished = (
            Transfer.objects.filter(submission=submission, state=Transfer.State.FINALISED)
            .exclude(kind=Transfer.Kind.PREVIEW)
            .count()
        )
        settled = manifest.expected_files > 0 and finished >= manifest.expected_files
    if settled:
        settle(submission)  # once, even with two finalisers settling together
    return settled
