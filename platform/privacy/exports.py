"""The de-identified export of a study for teaching or research: every instance fetched from the
archive, de-identified (privacy.deidentify), written into one ZIP under PRIVACY_EXPORT_DIR (kept
RETENTION_DEID_EXPORT_DAYS, then purged). Recorded in the audit trail as "study.deidentified"."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from audit.api import record
from orthanc.client import OrthancError
from studies.archive import get_archive
from studies.models import Study

from .deidentify import METHOD, PROFILE_CODES, STANDARD_EDITION, DeidentificationError, deidentify_bytes


class BurnedInRefused(Exception):
    """The study may carry burned-in annotations and nobody confirmed the export."""


class ArchiveUnavailable(Exception):
    pass


def deid_key() -> bytes:
    """The key of the UID and pseudonym hashes: the deployment's own (PRIVACY_DEID_KEY), or one
    derived from SECRET_KEY. The same key: the same study exports with the same UIDs."""
    configured = getattr(settings, "PRIVACY_DEID_KEY", "")
    if configured:
        return configured.encode()
    return hmac.new(settings.SECRET_KEY.encode(), b"joliba.privacy.deidentify", hashlib.sha256).digest()


def export_dir() -> Path:
    path = Path(settings.PRIVACY_EXPORT_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Export:
    path: Path
    files: int = 0
    refused: list[dict[str, str]] = field(default_factory=list)
    burned_in: bool = False


def export_study(
    study: Study, *, actor: Any = None, request: Any = None, confirm_burned_in: bool = False
) -> Export:
    """Write the de-identified ZIP of a study and return it. A study flagged as possibly
    carrying burned-in annotations is refused unless `confirm_burned_in` (a person has looked);
    an instance that cannot be de-identified is left out and listed in the ZIP's manifest."""
    if study.may_have_burned_in and not confirm_burned_in:
        record(
            "study.deidentified",
            request=request,
            actor=actor,
            obj=study,
            outcome="denied",
            detail={"reason": "burned_in_not_confirmed"},
        )
        raise BurnedInRefused
    archive = get_archive()
    key = deid_key()
    export = Export(path=export_dir() / f"deid-{study.pk}-{uuid.uuid4().hex[:12]}.zip")
    temporary = export.path.with_suffix(".part")
    try:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for number, instance in enumerate(
                study.instances.order_by("series_instance_uid", "instance_number", "pk"), 1
            ):
                try:
                    data = archive.instance_file(instance.orthanc_id)
                except OrthancError as exc:
                    raise ArchiveUnavailable(str(exc)) from exc
                try:
                    result = deidentify_bytes(data, key=key)
                except DeidentificationError as exc:
                    export.refused.append({"file": f"{number:05d}", "reason": str(exc)})
                    continue
                export.burned_in |= result.burned_in
                zf.writestr(f"DICOM/{number:05d}.dcm", result.data)
                export.files += 1
            zf.writestr("MANIFEST.json", json.dumps(_manifest(export), indent=2, ensure_ascii=False))
        temporary.replace(export.path)
    finally:
        temporary.unlink(missing_ok=True)
    record(
        "study.deidentified",
        request=request,
        actor=actor,
        obj=study,
        detail={
            "files": export.files,
            "left_out": len(export.refused),
            "burned_in_confirmed": confirm_burned_in,
        },
    )
    return export


def _manifest(export: Export) -> dict[str, Any]:
    return {
        "profile": STANDARD_EDITION,
        "method": METHOD,
        "codes": [{"value": v, "scheme": "DCM", "meaning": m} for v, m in PROFILE_CODES],
        "dates": "retained (Retain Longitudinal Temporal Information with Full Dates Option)",
        "files": export.files,
        "left_out": export.refused,
        "may_carry_burned_in_annotations": export.burned_in,
        "warning": "Pixel data is not altered: check the images for burned-in text before sharing.",
        "made_at": timezone.now().isoformat(),
    }
