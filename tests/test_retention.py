"""Retention (privacy.retention): the one purge task deletes what is due and nothing else, and
records the counts in the audit trail; the beat schedule runs it."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from ingest.models import FileVerdict, Submission
from ingest.verdicts import Outcome
from privacy import retention
from privacy.tasks import purge_retention
from studies import lifecycle
from studies.lifecycle import Transition
from tests.alerts_support import new_study
from uploads import spool
from uploads.models import Transfer
from viewer import storage
from viewer.models import Rendition, State, ViewerImage

pytestmark = pytest.mark.django_db

DAY = 86400


@pytest.fixture(autouse=True)
def _retention(settings, tmp_path):
    settings.PRIVACY_EXPORT_DIR = tmp_path / "exports"
    settings.JOLIBA_RENDITIONS_ROOT = tmp_path / "renditions"
    settings.RETENTION_INCOMPLETE_UPLOAD_DAYS = 7
    settings.RETENTION_SPOOL_DAYS = 2
    settings.RETENTION_REJECTED_DAYS = 90
    settings.RETENTION_RENDITIONS_DAYS = 30
    settings.RETENTION_DEID_EXPORT_DAYS = 7


def _age(path, days: float) -> None:
    then = time.time() - days * DAY
    os.utime(path, (then, then))


def test_the_purge_is_in_the_beat_schedule():
    entry = django_settings.CELERY_BEAT_SCHEDULE["retention-purge"]
    assert entry["task"] == "privacy.tasks.purge_retention" and entry["schedule"] > 0


def test_spooled_files_and_exports_past_their_time_go_the_rest_stays(settings, tech_a):
    root = settings.INGEST_SPOOL_DIR
    old_dir = root / "upload-old"
    old_dir.mkdir(parents=True)
    (old_dir / "f.dcm").write_bytes(b"x")
    _age(old_dir / "f.dcm", 3)
    _age(old_dir, 3)
    fresh_dir = root / "upload-fresh"
    fresh_dir.mkdir()
    (fresh_dir / "f.dcm").write_bytes(b"x")
    # An open transfer's part is never touched, however old.
    submission = Submission.objects.create(site=tech_a.site, sender=tech_a)
    live = Transfer.objects.create(
        submission=submission, length=10, expires_at=timezone.now() + timedelta(days=1)
    )
    part = spool.create_part(live.pk)
    _age(part, 10)
    exports = settings.PRIVACY_EXPORT_DIR
    exports.mkdir()
    (exports / "deid-1-old.zip").write_bytes(b"z")
    _age(exports / "deid-1-old.zip", 8)
    (exports / "deid-2-new.zip").write_bytes(b"z")

    counts = retention.purge()
    assert counts["spool"] == 1 and counts["deid_exports"] == 1
    assert not old_dir.exists() and fresh_dir.exists() and part.exists()
    assert [p.name for p in exports.iterdir()] == ["deid-2-new.zip"]


def test_closed_incomplete_uploads_lose_their_bytes_and_names(settings, tech_a):
    submission = Submission.objects.create(site=tech_a.site, sender=tech_a)
    old = Transfer.objects.create(
        submission=submission,
        length=10,
        filename="DIARRA_Awa.dcm",
        metadata={"patient": "DIARRA"},
        state=Transfer.State.EXPIRED,
        expires_at=timezone.now() - timedelta(days=20),
    )
    recent = Transfer.objects.create(
        submission=submission,
        length=10,
        filename="keep.dcm",
        state=Transfer.State.EXPIRED,
        expires_at=timezone.now(),
    )
    spool.create_part(old.pk).write_bytes(b"partial")
    Transfer.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=8))
    assert retention.purge()["incomplete_uploads"] >= 1
    old.refresh_from_db()
    recent.refresh_from_db()
    assert (old.filename, old.metadata) == ("", {}) and not spool.part_path(old.pk).exists()
    assert recent.filename == "keep.dcm"


def test_refused_files_verdicts_go_after_their_time_accepted_ones_stay(tech_a):
    submission = Submission.objects.create(site=tech_a.site, sender=tech_a)

    def verdict(outcome, days):
        v = FileVerdict.objects.create(
            submission=submission,
            filename="DIARRA.dcm",
            size=1,
            sha256="0" * 64,
            outcome=outcome,
            code="not_dicom",
        )
        FileVerdict.objects.filter(pk=v.pk).update(created_at=timezone.now() - timedelta(days=days))
        return v.pk

    old_refused, new_refused = verdict(Outcome.REFUSED, 100), verdict(Outcome.REFUSED, 10)
    old_stored = verdict(Outcome.STORED, 400)
    assert retention.purge()["rejected_files"] == 1
    assert set(FileVerdict.objects.values_list("pk", flat=True)) == {new_refused, old_stored}
    assert not FileVerdict.objects.filter(pk=old_refused).exists()


def test_renditions_of_long_delivered_studies_go_and_are_not_made_again(site_a, radiologist, tech_a):
    from studies.models import Instance

    def study_with_rendition(delivered_days_ago: float | None, data: bytes):
        study = new_study(site_a)
        instance = Instance.objects.create(
            study=study,
            sop_instance_uid=f"2.25.{study.pk}1",
            series_instance_uid="2.25.1",
            orthanc_id=f"o{study.pk}",
        )
        digest = storage.put(data)
        ViewerImage.objects.create(instance=instance, state=State.DONE)
        Rendition.objects.create(
            instance=instance,
            kind="preview",
            frame=0,
            format="webp",
            digest=digest,
            size=len(data),
            width=1,
            height=1,
        )
        if delivered_days_ago is not None:
            for t in (Transition.CLAIM, Transition.SIGN):
                study = lifecycle.transition(study, t, actor=radiologist)
            lifecycle.transition(study, Transition.DELIVER, actor=tech_a)
            study.events.filter(to_status="delivered").update(
                at=timezone.now() - timedelta(days=delivered_days_ago)
            )
        return study, digest

    old, old_digest = study_with_rendition(40, b"old-image")
    recent, recent_digest = study_with_rendition(5, b"recent-image")
    unread, unread_digest = study_with_rendition(None, b"unread-image")
    assert retention.purge()["renditions"] == 1
    assert not Rendition.objects.filter(instance__study=old).exists()
    assert not storage.path_of(old_digest).exists()
    assert ViewerImage.objects.get(instance__study=old).state == State.FAILED
    for study, digest in ((recent, recent_digest), (unread, unread_digest)):
        assert Rendition.objects.filter(instance__study=study).exists() and storage.path_of(digest).exists()


def test_zero_keeps_everything_and_the_purge_is_audited(settings, tech_a, django_capture_on_commit_callbacks):
    for name in ("INCOMPLETE_UPLOAD", "SPOOL", "REJECTED", "RENDITIONS", "DEID_EXPORT"):
        setattr(settings, f"RETENTION_{name}_DAYS", 0)
    old_dir = settings.INGEST_SPOOL_DIR / "upload-old"
    old_dir.mkdir(parents=True)
    _age(old_dir, 30)
    with django_capture_on_commit_callbacks(execute=True):  # the trail writes a success on commit
        counts = purge_retention()
    assert set(counts.values()) == {0} and old_dir.exists()
    from audit.models import AuditEvent

    assert list(AuditEvent.objects.filter(action="retention.purged").values_list("outcome", "detail")) == [
        ("ok", counts)
    ]
