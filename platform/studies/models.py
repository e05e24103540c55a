from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Priority(models.TextChoices):
    ROUTINE = "routine", _("Routine")
    URGENT = "urgent", _("Urgent")
    STAT = "stat", _("Extrême urgence (STAT)")


PRIORITY_RANK = {Priority.STAT: 0, Priority.URGENT: 1, Priority.ROUTINE: 2}


class Status(models.TextChoices):
    RECEIVED = "received", _("Reçu")
    PRE_READ = "pre_read", _("Pré-lu par l'IA")
    QUEUED = "queued", _("En attente de lecture")
    IN_READING = "in_reading", _("En lecture")
    REPORTED = "reported", _("Compte rendu signé")
    DELIVERED = "delivered", _("Compte rendu remis au site")


# Which timestamp each status stamps when the study enters it.
STATUS_TIMESTAMP = {
    Status.RECEIVED: "received_at",
    Status.PRE_READ: "pre_read_at",
    Status.QUEUED: "queued_at",
    Status.IN_READING: "reading_started_at",
    Status.REPORTED: "reported_at",
    Status.DELIVERED: "delivered_at",
}
OPEN_STATUSES = (Status.RECEIVED, Status.PRE_READ, Status.QUEUED, Status.IN_READING)


class Study(models.Model):
    """One imaging study (a case) as it travels from a site to a signed report."""

    class Source(models.TextChoices):
        UPLOAD = "upload", _("Envoi par le site")
        ARCHIVE = "archive", _("Arrivé directement dans l'archive (C-STORE, pair)")

    orthanc_id = models.CharField(max_length=64, unique=True)
    study_instance_uid = models.CharField(max_length=64, unique=True)
    site = models.ForeignKey(
        "accounts.Site", null=True, blank=True, on_delete=models.PROTECT, related_name="studies",
        help_text=_("Empty when a study reached the archive from an unknown sender."),
    )
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.UPLOAD)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="uploaded_studies",
    )

    # Facts read from DICOM.
    patient_name = models.CharField(_("patient"), max_length=200, blank=True)
    patient_id = models.CharField(_("identifiant patient"), max_length=64, blank=True)
    patient_sex = models.CharField(_("sexe"), max_length=16, blank=True)
    patient_birth_date = models.CharField(_("date de naissance"), max_length=8, blank=True)
    accession_number = models.CharField(_("numéro d'accès"), max_length=64, blank=True)
    modality = models.CharField(_("modalité"), max_length=64, blank=True)
    body_part = models.CharField(_("région anatomique"), max_length=64, blank=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    study_date = models.CharField(_("date de l'examen"), max_length=8, blank=True)
    institution = models.CharField(_("établissement"), max_length=200, blank=True)

    # Given by the technician.
    indication = models.TextField(_("indication clinique"), blank=True)
    priority = models.CharField(
        _("priorité"), max_length=16, choices=Priority.choices, default=Priority.ROUTINE
    )

    status = models.CharField(
        _("statut"), max_length=16, choices=Status.choices, default=Status.RECEIVED, db_index=True
    )
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="assigned_studies", verbose_name=_("radiologue"),
    )
    # The current AI pre-read, copied here so the worklist ranks without a join (preread app holds
    # the full results and their history).
    ai_urgency = models.FloatField(_("urgence IA"), null=True, blank=True)
    ai_critical = models.BooleanField(_("alerte critique IA"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    received_at = models.DateTimeField(null=True, blank=True)
    pre_read_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    reading_started_at = models.DateTimeField(null=True, blank=True)
    reported_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("examen")

    def __str__(self) -> str:
        return f"{self.modality or '?'} {self.description or ''} #{self.pk}".strip()

    def move_to(self, status: str, *, save: bool = True) -> None:
        """Enter a status and stamp its time (the first time only)."""
        self.status = status
        field = STATUS_TIMESTAMP[status]
        if getattr(self, field) is None:
            setattr(self, field, timezone.now())
        if save:
            self.save(update_fields=["status", field])

    @property
    def timeline(self) -> list[tuple[str, object]]:
        return [(Status(s).label, getattr(self, f)) for s, f in STATUS_TIMESTAMP.items()]


class Instance(models.Model):
    """One DICOM instance of a study, as stored in Orthanc."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="instances")
    sop_instance_uid = models.CharField(max_length=64, unique=True)
    series_instance_uid = models.CharField(max_length=64)
    orthanc_id = models.CharField(max_length=64, unique=True)
    instance_number = models.IntegerField(null=True, blank=True)
    modality = models.CharField(max_length=16, blank=True)
    # Irreversibly compressed (0028,2110 = 01): the radiologist must know.
    lossy = models.BooleanField(default=False)
    lossy_ratio = models.CharField(max_length=64, blank=True)
    lossy_method = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["series_instance_uid", "instance_number", "pk"]
