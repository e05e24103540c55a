"""The rota, second opinions and patient records confirmed as the same person.

What a radiologist may read (modalities, sites, cases in hand) is `accounts.ReaderProfile`:
studies.access reads it, and studies imports no app but accounts.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _


class Shift(models.Model):
    """A period a radiologist is on duty: in push mode only radiologists on shift get cases."""

    radiologist = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="shifts",
        verbose_name=_("radiologue"),
        limit_choices_to={"role": "radiologist"},
    )
    starts_at = models.DateTimeField(_("début"))
    ends_at = models.DateTimeField(_("fin"))
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        ordering = ["starts_at"]
        verbose_name = _("garde")
        verbose_name_plural = _("tableau de garde")
        indexes = [models.Index(fields=["starts_at", "ends_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")), name="shift_ends_after_start"
            )
        ]

    def __str__(self) -> str:
        return f"{self.radiologist} {self.starts_at:%d/%m %H:%M}–{self.ends_at:%d/%m %H:%M}"

    def clean(self) -> None:
        super().clean()
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": _("La fin de la garde doit suivre son début.")})


class SecondOpinion(models.Model):
    """The radiologist holding a study asks a colleague a question about it; the colleague
    answers. The study's status does not change: the holder still signs."""

    study = models.ForeignKey("studies.Study", on_delete=models.CASCADE, related_name="second_opinions")
    asked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="opinions_asked",
        verbose_name=_("demandé par"),
    )
    asked_of = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="opinions_to_give",
        verbose_name=_("demandé à"),
    )
    question = models.TextField(_("question"))
    answer = models.TextField(_("réponse"), blank=True)
    asked_at = models.DateTimeField(_("demandé le"), auto_now_add=True)
    answered_at = models.DateTimeField(_("répondu le"), null=True, blank=True)

    class Meta:
        ordering = ["-asked_at"]
        verbose_name = _("second avis")
        verbose_name_plural = _("seconds avis")

    def __str__(self) -> str:
        return f"{self.study_id}: {self.asked_by} → {self.asked_of}"

    @property
    def is_answered(self) -> bool:
        return self.answered_at is not None


class PatientLink(models.Model):
    """Two patient records (a site and the PatientID it uses) that a person judged to be the
    same patient, or not: the suggestion (same name, sex and birth date at another site) is
    then not offered again, and a confirmed link makes their studies each other's priors."""

    class Verdict(models.TextChoices):
        SAME = "same", _("Même patient")
        DIFFERENT = "different", _("Patients différents")

    site_a = models.ForeignKey("accounts.Site", on_delete=models.CASCADE, related_name="+")
    patient_id_a = models.CharField(max_length=64)
    site_b = models.ForeignKey("accounts.Site", on_delete=models.CASCADE, related_name="+")
    patient_id_b = models.CharField(max_length=64)
    verdict = models.CharField(_("décision"), max_length=16, choices=Verdict.choices)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("décidé par")
    )
    decided_at = models.DateTimeField(_("décidé le"), auto_now_add=True)

    class Meta:
        verbose_name = _("rapprochement de dossiers patient")
        verbose_name_plural = _("rapprochements de dossiers patient")
        constraints = [
            models.UniqueConstraint(
                fields=["site_a", "patient_id_a", "site_b", "patient_id_b"], name="one_verdict_per_pair"
            )
        ]

    def __str__(self) -> str:
        return f"{self.site_a_id}/{self.patient_id_a} ~ {self.site_b_id}/{self.patient_id_b}: {self.verdict}"
