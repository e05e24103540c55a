import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Upload(models.Model):
    """One sending by a technician: several files, each with its own verdict."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="uploads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    indication = models.TextField(blank=True)
    priority = models.CharField(max_length=16)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]


class FileVerdict(models.Model):
    """What happened to one received file: kept for the technician and for audit."""

    class Outcome(models.TextChoices):
        STORED = "stored", _("Accepté")
        DUPLICATE = "duplicate", _("Déjà reçu (doublon ignoré)")
        REFUSED = "refused", _("Refusé")

    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="verdicts")
    filename = models.CharField(max_length=255)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    code = models.CharField(max_length=32)
    reason = models.CharField(max_length=400, blank=True)
    sop_instance_uid = models.CharField(max_length=64, blank=True)
    study = models.ForeignKey(
        "studies.Study", null=True, blank=True, on_delete=models.SET_NULL, related_name="verdicts"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    @property
    def accepted(self) -> bool:
        return self.outcome != self.Outcome.REFUSED


class ChangesCursor(models.Model):
    """How far the platform has read Orthanc's changes feed (survives restarts)."""

    name = models.CharField(max_length=32, unique=True, default="orthanc")
    last_seq = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)
