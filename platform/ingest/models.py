import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from studies.models import Priority

from .verdicts import FILE_OUTCOMES, Outcome, describe


class Submission(models.Model):
    """One sending of files by a site (a form, an API call, a manifest's transfers): who sent,
    why, how urgent; each file it brought gets a FileVerdict."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="submissions")
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="submissions")
    indication = models.TextField(blank=True)
    priority = models.CharField(max_length=16, choices=Priority.choices, default=Priority.ROUTINE)
    # How many instances a manifest announced for the study; None when the sending itself is
    # the whole of what the site sends (a form, a single transfer without manifest).
    expected_instances = models.PositiveIntegerField(null=True, blank=True)
    # Every file has its verdict (for a manifest: every announced instance is in or refused).
    settled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    @property
    def settled(self) -> bool:
        return self.settled_at is not None

    @classmethod
    def open_filter(cls, now=None) -> Q:
        """Sendings still under way: the study they bring is not complete yet.

        A manifest waits as long as it takes (a link down for a weekend); a sending without one
        that never settled was cut by a dead process, and after a while nobody will finish it.
        """
        now = now or timezone.now()
        abandoned = now - timedelta(seconds=settings.INGEST_ABANDONED_SUBMISSION_SECONDS)
        return Q(settled_at=None) & (Q(expected_instances__isnull=False) | Q(created_at__gt=abandoned))


class FileVerdict(models.Model):
    """What happened to one received file: kept for the technician and for audit."""

    Outcome = Outcome

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="verdicts")
    filename = models.CharField(max_length=255)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    outcome = models.CharField(max_length=16, choices=FILE_OUTCOMES)
    code = models.CharField(max_length=32)  # a key of ingest.verdicts.MESSAGES
    params = models.JSONField(default=dict, blank=True)
    sop_instance_uid = models.CharField(max_length=64, blank=True)
    study = models.ForeignKey(
        "studies.Study", null=True, blank=True, on_delete=models.SET_NULL, related_name="verdicts"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    @property
    def accepted(self) -> bool:
        return self.outcome != Outcome.REFUSED

    @property
    def reason(self) -> str:
        """The sentence for the technician, in the active language."""
        return describe(self.code, self.params)


class InstanceIntent(models.Model):
    """A site's intent to send one instance, written (and committed) before the archive sees it.

    Whatever route later meets the instance in Orthanc — the sender's own finalisation, its
    retry, the changes feed after a crash — gives the study its sender, site, priority and
    indication from here, so a crash between the archive and the platform never leaves a study
    without its site.
    """

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="intents")
    study_instance_uid = models.CharField(max_length=64, db_index=True)
    sop_instance_uid = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the changes feed recorded the instance for this sending, having met it in the archive
    # first (the sending died after the store, or is slower than the feed).
    recorded_by_feed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["submission", "sop_instance_uid"], name="one_intent_per_file")
        ]


class ArrivingArchiveStudy(models.Model):
    """An Orthanc study the changes feed saw appear and has not completed yet.

    Orthanc announces a study StableStudy once, from memory: an Orthanc restart before that
    loses the announcement. The feed therefore keeps its own list and asks Orthanc
    (IsStable) until each study is complete.
    """

    orthanc_study_id = models.CharField(max_length=64, unique=True)
    study_instance_uid = models.CharField(max_length=64, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["first_seen_at"]


class ChangesCursor(models.Model):
    """How far the platform has read Orthanc's changes feed (survives restarts)."""

    name = models.CharField(max_length=32, unique=True, default="orthanc")
    last_seq = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)


class QuotaHold(models.Model):
    """Bytes a request in progress holds against its site's spool quota (a plain form or API
    sending, a tus PATCH being written). Deleted when the request ends; one a killed process
    left behind stops counting at `expires_at` (ingest.quota)."""

    site = models.ForeignKey("accounts.Site", on_delete=models.CASCADE, related_name="+")
    bytes = models.BigIntegerField()
    route = models.CharField(max_length=16)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)


class DailyUsage(models.Model):
    """Bytes a site brought in on one (local) day, every route together: the daily budget."""

    site = models.ForeignKey("accounts.Site", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    bytes = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["site", "day"], name="one_usage_row_per_site_day")]


class ArchiveRefusal(models.Model):
    """The verdict on an instance a modality C-STOREd straight into Orthanc and that the platform
    refused afterwards (the site's daily budget was spent): removed from the archive, kept here
    for the site's administrators and the audit. No patient data: UIDs and sizes only."""

    site = models.ForeignKey("accounts.Site", on_delete=models.CASCADE, related_name="+")
    calling_aet = models.CharField(max_length=16, blank=True)
    study_instance_uid = models.CharField(max_length=64)
    sop_instance_uid = models.CharField(max_length=64)
    size = models.BigIntegerField()
    code = models.CharField(max_length=32)  # a key of ingest.verdicts.MESSAGES
    params = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    @property
    def reason(self) -> str:
        return describe(self.code, self.params)
