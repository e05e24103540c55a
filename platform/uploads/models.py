"""Resumable file transfers (tus) and the study manifests that say when a study is complete.

A site's sending is an ingest.Submission (who, why, how urgent, a verdict per file); a
StudyManifest is what the site announced of the study; each file comes as a Transfer.
"""

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from ingest.verdicts import Outcome, describe


class StudyManifest(models.Model):
    """What a site announces before sending a study: which instances (or how many files).

    A study counts as received when every instance listed here is in the archive or refused (or,
    for the page, which cannot read DICOM, when every announced file has its verdict); the
    moment is its submission's `settled_at`.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The submission holds the site, sender, priority and indication; the verdicts of the
    # manifest's files hang from it.
    submission = models.OneToOneField("ingest.Submission", on_delete=models.PROTECT, related_name="manifest")
    study_instance_uid = models.CharField(max_length=64, blank=True, db_index=True)
    # [{"sop_instance_uid", "sha256", "size"}] — empty when only a file count is known.
    expected = models.JSONField(default=list, blank=True)
    expected_files = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    @property
    def complete(self) -> bool:
        return self.submission.settled_at is not None


class Transfer(models.Model):
    """One resumable file transfer. `offset` is the authority: bytes past it on disk are ignored."""

    Outcome = Outcome

    class State(models.TextChoices):
        RECEIVING = "receiving", _("En cours de réception")
        COMPLETE = "complete", _("Reçu, en cours de vérification")
        FINALISED = "finalised", _("Traité")
        EXPIRED = "expired", _("Expiré")
        TERMINATED = "terminated", _("Annulé")

    class Kind(models.TextChoices):
        DICOM = "dicom", _("Fichier DICOM")
        BUNDLE = "bundle", _("Lot de fichiers DICOM")
        PREVIEW = "preview", _("Aperçu")
        PHOTO = "photo", _("Photo ou scan d'un film")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The sending it belongs to: a manifest's (submission.manifest), or one of its own.
    submission = models.ForeignKey("ingest.Submission", on_delete=models.PROTECT, related_name="transfers")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.DICOM)
    length = models.BigIntegerField()
    offset = models.BigIntegerField(default=0)
    filename = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    # Decoded Upload-Metadata (may hold the facts typed for a photo; never logged).
    metadata = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.RECEIVING, db_index=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    code = models.CharField(max_length=32, blank=True)  # a key of ingest.verdicts.MESSAGES
    params = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField(db_index=True)
    finalised_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]

    # Receiving or received but not yet processed: counts against the quota, can still finish.
    OPEN_STATES = (State.RECEIVING, State.COMPLETE)

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES

    @property
    def site_id(self) -> int:
        return self.submission.site_id

    @property
    def manifest(self) -> StudyManifest | None:
        try:
            return self.submission.manifest
        except StudyManifest.DoesNotExist:
            return None

    @property
    def reason(self) -> str:
        """The verdict's sentence in the active language ("" while there is none)."""
        return describe(self.code, self.params) if self.code else ""


class Preview(models.Model):
    """The small lossy preview a site agent sends first for a series (siteagent/preview.py).

    Kept here, never in the archive: it is not one of the study's images, is never shown as
    diagnostic, and only feeds the provisional pre-read of a study still arriving
    (preread.provisional). A few tens of kB: its bytes live in the row, durable with it.
    """

    transfer = models.OneToOneField(Transfer, on_delete=models.CASCADE, related_name="preview")
    submission = models.ForeignKey("ingest.Submission", on_delete=models.CASCADE, related_name="previews")
    study_instance_uid = models.CharField(max_length=64, db_index=True)
    # The original image it stands for (its Source Image Sequence), when the agent says.
    source_sop_instance_uid = models.CharField(max_length=64, blank=True)
    sha256 = models.CharField(max_length=64)
    data = models.BinaryField()
    # The header facts of the preview (copied from its original by the agent): what the scope
    # checks read, shown where the provisional score is.
    facts = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
