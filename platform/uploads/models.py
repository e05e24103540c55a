"""Resumable uploads (tus) and the per-study manifests that say when a study is complete."""

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Manifest(models.Model):
    """What a site announces before sending a study: which instances, how urgent, why.

    A study counts as received when every instance listed here is in the archive (or, for
    the page, which cannot read DICOM, when every announced file has its verdict).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # One ingest Upload per manifest: it holds the site, sender, priority and indication, and
    # the verdicts of the manifest's files hang from it.
    upload = models.OneToOneField("ingest.Upload", on_delete=models.PROTECT, related_name="manifest")
    study_instance_uid = models.CharField(max_length=64, blank=True, db_index=True)
    # [{"sop_instance_uid", "sha256", "size"}] — empty when only a file count is known.
    expected = models.JSONField(default=list, blank=True)
    expected_files = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]


class TusUpload(models.Model):
    """One resumable file transfer. `offset` is the authority: bytes past it on disk are ignored."""

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
    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="tus_uploads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    manifest = models.ForeignKey(
        Manifest, null=True, blank=True, on_delete=models.SET_NULL, related_name="files"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.DICOM)
    length = models.BigIntegerField()
    offset = models.BigIntegerField(default=0)
    filename = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    # Decoded Upload-Metadata (may hold the facts typed for a photo; never logged).
    metadata = models.JSONField(default=dict, blank=True)
    state = models.CharField(
        max_length=16, choices=State.choices, default=State.RECEIVING, db_index=True
    )
    outcome = models.CharField(max_length=16, blank=True)  # stored / duplicate / refused / mixed
    code = models.CharField(max_length=32, blank=True)
    reason = models.CharField(max_length=400, blank=True)
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
