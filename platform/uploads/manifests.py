"""Study manifests: what a site announces of a study, and when the study counts as complete."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction

from accounts.models import User
from ingest.models import Submission
from ingest.services import settle
from ingest.verdicts import Outcome
from studies.access import may_see_sending, may_send_for_site, studies_a_site_sends_to
from studies.models import Instance, Priority

from .models import StudyManifest, Transfer
from .refusals import UploadRefused

UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")  # DICOM UI: digits and dots, 64 characters at most
HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass
class ManifestRequest:
    """A manifest as posted, every field checked (parse_manifest)."""

    manifest_id: str | None = None
    study_instance_uid: str = ""
    priority: str = Priority.ROUTINE
    indication: str = ""
    expected: list[dict] = field(default_factory=list)
    expected_files: int = 0


def _bad(name: str) -> UploadRefused:
    return UploadRefused(400, "manifest_bad_field", field=name)


def _text(data: dict, name: str, limit: int, default: str = "") -> str:
    value = data.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str) or len(value) > limit:
        raise _bad(name)
    return value


def _count(value: object, name: str, limit: int) -> int:
    """A JSON whole number in [0, limit]: not a bool, not a float (1e20), not a string."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise _bad(name)
    return value


def _reject_constant(name: str) -> float:
    raise ValueError(name)  # NaN, Infinity: not JSON numbers a manifest can carry


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(text)
    return number


def read_body(request, limit: int) -> bytes:
    """At most `limit` bytes of the request's body: a larger one is refused before it is read."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise UploadRefused(413, "manifest_too_large", limit_kb=limit // 1024)
    body = request.read(limit + 1)
    if len(body) > limit:
        raise UploadRefused(413, "manifest_too_large", limit_kb=limit // 1024)
    return body


def parse_manifest(raw: bytes) -> ManifestRequest:
    """Check a posted manifest field by field; every fault is a 400 with a reason, never a 500."""
    try:
        text = raw.decode("utf-8") if raw else "{}"
    except UnicodeDecodeError:
        raise UploadRefused(400, "manifest_not_utf8") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_float=_finite)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
        raise UploadRefused(400, "manifest_bad_json") from None
    if not isinstance(data, dict):
        raise UploadRefused(400, "manifest_not_object")
    max_instances = int(settings.UPLOADS_MANIFEST_MAX_INSTANCES)
    instances = data.get("instances", [])
    if instances is None:
        instances = []
    if not isinstance(instances, list):
        raise _bad("instances")
    if len(instances) > max_instances:
        raise UploadRefused(400, "manifest_too_many", limit=max_instances)
    expected = []
    for entry in instances:
        if not isinstance(entry, dict):
            raise _bad("instances")
        uid = entry.get("sop_instance_uid")
        if not isinstance(uid, str) or len(uid) > 64 or not UID.match(uid):
            raise _bad("sop_instance_uid")
        sha = entry.get("sha256", "") or ""
        if not isinstance(sha, str) or (sha and not HEX64.match(sha)):
            raise _bad("sha256")
        size = _count(entry.get("size", 0), "size", int(settings.UPLOADS_MAX_BYTES))
        entry_out = {"sop_instance_uid": uid, "sha256": sha.lower(), "size": size}
        # The file's size before the agent compressed it (optional): the dashboard's bytes saved.
        raw_size = _count(entry.get("raw_size", 0), "raw_size", 2**40)
        if raw_size:
            entry_out["raw_size"] = raw_size
        expected.append(entry_out)
    priority = data.get("priority", Priority.ROUTINE)
    if not isinstance(priority, str) or priority not in Priority.values:
        raise _bad("priority")
    manifest_id = None
    if data.get("id") is not None and data.get("id") != "":
        raw_id = data["id"]
        from .transfers import parse_uuid  # transfers imports this module's neighbours

        manifest_id = parse_uuid(raw_id) if isinstance(raw_id, str) and len(raw_id) <= 64 else None
        if manifest_id is None:
            raise _bad("id")
    study_uid = _text(data, "study_instance_uid", 64)
    if study_uid and not UID.match(study_uid):
        raise _bad("study_instance_uid")
    return ManifestRequest(
        manifest_id=manifest_id,
        study_instance_uid=study_uid,
        priority=priority,
        indication=_text(data, "indication", 2000),
        expected=expected,
        expected_files=_count(data.get("files", 0), "files", max_instances),
    )


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


def already_archived(
    manifest: StudyManifest, *, among: Collection[str] | None = None, site_id: int | None = None
) -> set[str]:
    """Those of the manifest's own instances that the archive holds in this very study of the
    sending site (studies.access decides which studies a site may hear about): the agent need
    not send them. Only UIDs the site itself listed are ever answered, and never for another
    site's study, so a manifest cannot be used to probe what others sent.

    `among` narrows the question to some of the listed UIDs; `site_id` is the sending's site
    when the caller has it already."""
    listed = {e["sop_instance_uid"] for e in manifest.expected}
    uids = listed if among is None else listed & set(among)
    if not uids:
        return set()
    if site_id is None:
        site_id = Submission.objects.filter(pk=manifest.submission_id).values_list("site_id", flat=True).get()
    rows = Instance.objects.filter(sop_instance_uid__in=uids, study__in=studies_a_site_sends_to(site_id))
    if manifest.study_instance_uid:
        # In another study it is not this study's instance: sending it gets its verdict instead.
        rows = rows.filter(study__study_instance_uid=manifest.study_instance_uid)
    return set(rows.values_list("sop_instance_uid", flat=True))


def manifest_status(manifest: StudyManifest) -> dict:
    """What the centre has of a study: settled or not, which instances it already has (`have`:
    skip them) and which are still missing."""
    submission = Submission.objects.get(pk=manifest.submission_id)
    expected = [e["sop_instance_uid"] for e in manifest.expected]
    have = already_archived(manifest) | _delivered(submission)
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
        "have": [uid for uid in expected if uid in have],
        "missing": [uid for uid in expected if uid not in have],
        "study": submission.verdicts.exclude(study=None).values_list("study_id", flat=True).first(),
        "verdicts": verdicts,
        "open_uploads": Transfer.objects.filter(
            submission=submission, state__in=Transfer.OPEN_STATES
        ).count(),
    }


def _delivered(submission: Submission, *, or_refused: bool = False) -> set[str]:
    """The instances this sending delivered, by their verdicts: also a lossy stand-in that its
    original has since replaced (its row is gone from the archive's records) or that came
    after it (docs/ingest-protocol.md, lossy first). `or_refused`: those refused too, i.e. every
    instance the sending has answered for."""
    outcomes = [Outcome.STORED, Outcome.DUPLICATE] + ([Outcome.REFUSED] if or_refused else [])
    return set(submission.verdicts.filter(outcome__in=outcomes).values_list("sop_instance_uid", flat=True))


def settle_manifest(manifest: StudyManifest) -> bool:
    """Announce the study once every listed instance is in the archive (or refused with a reason)."""
    # As the caller read it (under its lock, for a finaliser): a settling seen late only makes
    # settle() find the work done.
    submission = manifest.submission
    if submission.settled_at is not None:
        return True
    if manifest.expected:
        # Settled when each listed instance has its verdict in this sending (delivered or
        # refused) or is in the archive already: the archive is asked only about the others.
        missing = {e["sop_instance_uid"] for e in manifest.expected} - _delivered(submission, or_refused=True)
        settled = not missing or missing <= already_archived(
            manifest, among=missing, site_id=submission.site_id
        )
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
