"""A study (a case) and its instances. Its status changes only through studies.lifecycle."""

from __future__ import annotations

import re
from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Priority(models.TextChoices):
    ROUTINE = "routine", _("Routine")
    URGENT = "urgent", _("Urgent")
    STAT = "stat", _("Extrême urgence (STAT)")


class Status(models.TextChoices):
    """Where a study is in its life; the allowed moves are the table in studies.lifecycle."""

    ARRIVING = "arriving", _("En cours d'arrivée")
    RECEIVED = "received", _("Reçu")
    QUEUED = "queued", _("En attente de lecture")
    IN_READING = "in_reading", _("En lecture")
    REPORTED = "reported", _("Compte rendu signé")
    DELIVERED = "delivered", _("Compte rendu remis au site")
    RETURNED = "returned", _("Renvoyé au site : images non diagnostiques")


class ReturnReason(models.TextChoices):
    """Why a radiologist sends a study back to its site to be done again."""

    MOTION = "motion", _("Flou de mouvement")
    POSITIONING = "positioning", _("Mauvais positionnement ou mauvaise incidence")
    EXPOSURE = "exposure", _("Exposition inadaptée (image trop claire ou trop sombre)")
    COVERAGE = "coverage", _("Région d'intérêt incomplète sur l'image")
    WRONG_SIDE = "wrong_side", _("Mauvais côté (latéralité erronée ou non marquée)")
    ARTEFACT = "artefact", _("Artefact (objet métallique, grille, défaut du capteur)")
    WRONG_STUDY = "wrong_study", _("Examen ne correspondant pas à l'indication")


class Source(models.TextChoices):
    UPLOAD = "upload", _("Envoi par le site")
    ARCHIVE = "archive", _("Arrivé directement dans l'archive (C-STORE, pair)")


# A case code: the sending site's code in capitals, a hyphen, the study's number (KAYES-1234);
# the number alone for a study of unknown origin. No patient data; the number is unique on its
# own, the site part is a check a person can read (a wrong site finds nothing).
CASE_CODE = re.compile(
    r"^\s*#?\s*(?:(?P<site>[a-z0-9][a-z0-9_-]*?)\s*[-\s]\s*)?(?P<number>\d{1,12})\s*$", re.I
)


class Study(models.Model):
    """One imaging study (a case) as it travels from a site to a signed report."""

    Source = Source  # kept reachable as Study.Source

    orthanc_id = models.CharField(max_length=64, unique=True)
    study_instance_uid = models.CharField(max_length=64, unique=True)
    site = models.ForeignKey(
        "accounts.Site",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="studies",
        help_text=_("Empty when a study reached the archive from an unknown sender."),
    )
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.UPLOAD)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
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
    # How many instances the site announced (its manifest); None when it did not say.
    expected_instances = models.PositiveIntegerField(null=True, blank=True)

    # Written only by studies.lifecycle.transition(); the history with times and actors is
    # StudyEvent, so no per-status timestamp column repeats it.
    status = models.CharField(
        _("statut"), max_length=16, choices=Status.choices, default=Status.ARRIVING, db_index=True
    )
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assigned_studies",
        verbose_name=_("radiologue"),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    # What the worklist ranks by, copied here so that PostgreSQL ranks thousands of open cases
    # per request from one index, without a lookup per row. Derived, never edited: the one
    # writer is worklist/facts.py (on each `received` event and each current pre-read), which
    # can rebuild them from the history and the pre-reads at any time.
    waiting_since = models.DateTimeField(null=True, blank=True, editable=False)  # last `received`
    ai_urgency = models.FloatField(null=True, blank=True, editable=False)  # current scored pre-read
    ai_critical = models.BooleanField(default=False, editable=False)  # ... flagged a critical finding
    # Text may be burned into the pixels (names, dates): set by privacy.burned_in when an
    # instance says so or looks like it (secondary capture, ultrasound, screen save...). Shown to
    # readers; a de-identified export of the study needs an explicit confirmation.
    may_have_burned_in = models.BooleanField(
        _("peut porter des annotations incrustées"), default=False, editable=False
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("examen")
        indexes = [
            # The worklist's scan: open studies only (closed ones pile up for years), with every
            # column the score and the filters read, so the ranking is an index-only scan.
            models.Index(
                fields=["status", "priority"],
                include=["id", "waiting_since", "created_at", "ai_urgency", "ai_critical", "site", "modality",
                         "assigned_to"],
                condition=models.Q(status__in=["arriving", "received", "queued", "in_reading"]),
                name="study_open_worklist",
            ),
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"{self.modality or '?'} {self.description or ''} #{self.pk}".strip()

    @property
    def case_code(self) -> str:
        """Short, unambiguous, said over the phone or sent by SMS: KAYES-1234 (see CASE_CODE)."""
        return f"{self.site.code.upper()}-{self.pk}" if self.site_id and self.site else str(self.pk)

    @staticmethod
    def parse_case_code(text: str) -> tuple[str | None, int] | None:
        """(site code or None, study number) from what a person typed: "KAYES-1234",
        "kayes 1234", "#1234", "1234"; None when it is not a case code."""
        found = CASE_CODE.match(text or "")
        if not found:
            return None
        site = found["site"]
        return (site.lower() if site else None), int(found["number"])

    def entered_at(self, status: str) -> datetime | None:
        """When the study last entered `status` (from its history), or None."""
        for event in reversed(self.history):
            if event.to_status == status:
                return event.at
        return None

    @property
    def history(self) -> list[StudyEvent]:
        """Its events, oldest first (prefetch `events` to list many studies)."""
        return list(self.events.all())

    @property
    def received_at(self) -> datetime | None:
        """When the study was first complete: the start of its wait for a radiologist."""
        for event in self.history:
            if event.to_status == Status.RECEIVED:
                return event.at
        return None

    @property
    def reported_at(self) -> datetime | None:
        return self.entered_at(Status.REPORTED)

    @property
    def delivered_at(self) -> datetime | None:
        return self.entered_at(Status.DELIVERED)

    @property
    def return_reason(self) -> str:
        """Why the study was last sent back as not diagnostic (its label), or ""."""
        for event in reversed(self.history):
            if event.to_status == Status.RETURNED:
                return (
                    str(ReturnReason(event.reason_code).label)
                    if event.reason_code in ReturnReason.values
                    else ""
                )
        return ""

    @property
    def is_returned(self) -> bool:
        return self.status == Status.RETURNED

    @property
    def is_arriving(self) -> bool:
        return self.status == Status.ARRIVING

    @property
    def arrival_progress(self) -> tuple[int, int | None]:
        """(instances in the archive, instances announced) while the study is arriving."""
        return self.instances.count(), self.expected_instances


class StudyEvent(models.Model):
    """One move of a study's lifecycle: what, from where to where, by whom, when."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="events")
    transition = models.CharField(max_length=24)  # studies.lifecycle.Transition
    from_status = models.CharField(max_length=16, choices=Status.choices, blank=True)
    to_status = models.CharField(max_length=16, choices=Status.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The radiologist a claim or reassignment gave the study to.
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason_code = models.CharField(max_length=40, blank=True)  # e.g. why a study was returned
    at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["study", "to_status", "at"])]

    def __str__(self) -> str:
        return f"{self.study_id} {self.transition} {self.from_status}→{self.to_status}"


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
