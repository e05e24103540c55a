"""Reports: the draft a radiologist writes (Report, one per study), the signed versions that never
change (ReportVersion: the original, then amendments and addenda), the templates a report starts
from (ReportTemplate, admin-editable data) and the copy of each version sent back into Orthanc
(ReportExport, a durable row a periodic task finishes if the broker forgets it)."""

from __future__ import annotations

from datetime import timedelta

import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .labels import AI_NOTE, words

SECTIONS = ("indication", "technique", "findings", "conclusion")


class Language(models.TextChoices):
    FRENCH = "fr", _("Français")
    ENGLISH = "en", _("Anglais")


class CriticalCategory(models.TextChoices):
    """ACR's communication of critical results: how fast the referrer must hear of it.
    Blank (no choice) means no critical finding. Issue 9 (alerts) hangs alerts off a signed
    version whose category is set."""

    IMMEDIATE = "immediate", _("Critique immédiat (en minutes)")
    URGENT = "urgent", _("Critique urgent (en heures)")
    SIGNIFICANT = "significant", _("Significatif inattendu (en jours)")


class Abnormality(models.TextChoices):
    """The radiologist's structured answer, set when signing: is anything abnormal on this study?
    Blank: not said. The dashboard measures the AI's flags against it (docs/dashboard.md)."""

    ABSENT = "absent", _("Examen normal : aucune anomalie")
    PRESENT = "present", _("Anomalie présente")


class VersionKind(models.TextChoices):
    ORIGINAL = "original", _("Original")
    AMENDMENT = "amendment", _("Rectificatif")
    ADDENDUM = "addendum", _("Addendum")


class Provenance:
    """Where the text of one section came from (values of ReportVersion.provenance)."""

    RADIOLOGIST = "radiologist"
    AI = "ai"  # the AI draft, unedited: "ai:<model> <version>"
    AI_EDITED = "ai-edited"  # the AI draft, partly edited: "ai-edited:<model> <version>"


class ReportTemplate(models.Model):
    """The starting text of a report for a kind of exam, in French and English. Chosen from the
    study's modality and body part (the most specific match wins); an admin edits them."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name_fr = models.CharField(_("nom (français)"), max_length=100)
    name_en = models.CharField(_("nom (anglais)"), max_length=100)
    # Comma-separated DICOM values; empty matches any.
    modalities = models.CharField(_("modalités"), max_length=100, blank=True, help_text="CR,DX")
    body_parts = models.CharField(
        _("régions anatomiques"), max_length=200, blank=True, help_text="CHEST,THORAX"
    )
    technique_fr = models.TextField(_("technique (français)"), blank=True)
    technique_en = models.TextField(_("technique (anglais)"), blank=True)
    findings_fr = models.TextField(_("résultats (français)"), blank=True)
    findings_en = models.TextField(_("résultats (anglais)"), blank=True)
    conclusion_fr = models.TextField(_("conclusion (français)"), blank=True)
    conclusion_en = models.TextField(_("conclusion (anglais)"), blank=True)
    active = models.BooleanField(_("actif"), default=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("modèle de compte rendu")

    def __str__(self) -> str:
        return self.name_fr

    def name(self, language: str) -> str:
        return self.name_en if language == Language.ENGLISH else self.name_fr

    def text(self, section: str, language: str) -> str:
        """The template's text of a section ("" for the indication: it comes from the site)."""
        if section == "indication":
            return ""
        return str(getattr(self, f"{section}_{'en' if language == Language.ENGLISH else 'fr'}"))

    @staticmethod
    def _values(field: str) -> set[str]:
        return {v.strip().upper() for v in field.split(",") if v.strip()}

    def match_score(self, modality: str, body_part: str) -> int:
        """0: does not apply; higher: more specific."""
        modalities, parts = self._values(self.modalities), self._values(self.body_parts)
        if modalities and modality.upper() not in modalities:
            return 0
        if parts and body_part.upper() not in parts:
            return 0
        return 1 + bool(modalities) + 2 * bool(parts)


class Sections(models.Model):
    """The four sections of a report, in the order French radiologists write them."""

    indication = models.TextField(_("indication"), blank=True)
    technique = models.TextField(_("technique"), blank=True)
    findings = models.TextField(_("résultats"), blank=True)
    conclusion = models.TextField(_("conclusion"), blank=True)
    language = models.CharField(_("langue"), max_length=2, choices=Language.choices, default=Language.FRENCH)
    critical_category = models.CharField(
        _("résultat critique"), max_length=16, choices=CriticalCategory.choices, blank=True
    )
    abnormality = models.CharField(
        _("normal ou anormal"), max_length=8, choices=Abnormality.choices, blank=True, default=""
    )

    class Meta:
        abstract = True

    @property
    def has_critical_finding(self) -> bool:
        return bool(self.critical_category)


class Report(Sections):
    """The report of a study: the draft being written, and its signed versions (`versions`).
    The draft fields are the radiologist's working copy and never shown to the site; what the
    site sees is the latest version."""

    study = models.OneToOneField("studies.Study", on_delete=models.PROTECT, related_name="report")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    template = models.ForeignKey(ReportTemplate, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)  # the saved-at of the draft

    class Meta:
        verbose_name = _("compte rendu")

    @property
    def latest(self) -> ReportVersion | None:
        return self.versions.order_by("-number").first()

    @property
    def is_signed(self) -> bool:
        return self.versions.exists()

    @property
    def signed_at(self):  # the time of the first signature (the study's turnaround ends there)
        first = self.versions.order_by("number").first()
        return first.signed_at if first else None


# Before a version is written: its author must be an active account with the radiologist role
# (never a technician, an admin, an AI worker or any other service account), and AI text
# (a provenance "ai…") needs the signer's own acceptance. ERRCODE 42501: insufficient_privilege.
SIGNER_CHECK = """
IF NOT EXISTS (
    SELECT 1 FROM accounts_user u WHERE u.id = NEW.author_id AND u.role = 'radiologist' AND u.is_active
) THEN
    RAISE EXCEPTION 'joliba: report version signed by user % who is not an active radiologist',
        NEW.author_id USING ERRCODE = '42501';
END IF;
IF EXISTS (SELECT 1 FROM jsonb_each_text(NEW.provenance::jsonb) p WHERE p.value LIKE 'ai%')
    AND NEW.ai_accepted_by_id IS DISTINCT FROM NEW.author_id THEN
    RAISE EXCEPTION 'joliba: AI text signed without the signer''s acceptance' USING ERRCODE = '42501';
END IF;
RETURN NEW;
"""


class ReportVersion(Sections):
    """One signed state of a report: never updated after it is written."""

    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=16, choices=VersionKind.choices, default=VersionKind.ORIGINAL)
    reason = models.TextField(_("motif"), blank=True)  # of an amendment or addendum
    # An addendum's added text; its sections repeat the previous version's, untouched.
    addendum = models.TextField(_("addendum"), blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    author_name = models.CharField(max_length=200)  # as signed, even if the account changes later
    author_title = models.CharField(max_length=200, blank=True)
    signed_at = models.DateTimeField()
    # {section: "radiologist" | "ai:<model> <version>" | "ai-edited:<model> <version>"}
    provenance = models.JSONField(default=dict)
    # Set when AI text was signed: the radiologist accepted it and answers for it.
    ai_accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Some image of the study was lossy when this version was signed (a stand-in sent ahead of
    # its lossless original, or a site in lossy mode): the document says so, in its language.
    on_lossy_images = models.BooleanField(default=False)

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["report", "number"], name="one_version_number_per_report"),
            models.CheckConstraint(
                condition=Q(kind="original", number=1)
                | (~Q(kind="original") & Q(number__gt=1) & ~Q(reason="")),
                name="amendments_have_a_reason",
            ),
        ]
        # The database itself keeps the clinical record whole, whoever connects (the platform,
        # a worker, a service account, a raw SQL session): see SIGNER_CHECK.
        triggers = [
            pgtrigger.Protect(name="signed_version_immutable", operation=pgtrigger.Update | pgtrigger.Delete),
            pgtrigger.Trigger(
                name="signer_is_active_radiologist",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert,
                func=pgtrigger.Func(SIGNER_CHECK),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.report_id} v{self.number} {self.kind}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:  # a change to a signed report is a new version, never an update
            raise ValueError("a signed report version never changes")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @property
    def ai_sections(self) -> list[tuple[str, str]]:
        """(section, "ai…" source) of the sections whose text came from the AI."""
        return [(s, p) for s, p in self.provenance.items() if p.startswith(Provenance.AI)]

    def ai_note(self, section: str) -> str:
        """The label a reader sees under a section whose text came from the AI ("" otherwise),
        in the report's language: AI text is never shown as the radiologist's own words."""
        kind, _sep, model = self.provenance.get(section, "").partition(":")
        notes = AI_NOTE["en" if self.language == Language.ENGLISH else "fr"]
        return notes[kind].format(model=model, who=self.author_name) if kind in notes else ""

    @property
    def kind_word(self) -> str:
        w = words(self.language)
        return w["addendum_kind"] if self.kind == VersionKind.ADDENDUM else w[self.kind]

    @property
    def turnaround(self) -> timedelta | None:
        """From the study complete (received) to this signature."""
        received = self.report.study.received_at
        return self.signed_at - received if received else None


class ExportState(models.TextChoices):
    PENDING = "pending", _("À envoyer")
    DONE = "done", _("Dans l'archive")
    FAILED = "failed", _("Échec (réessayé)")


class ReportExport(models.Model):
    """A signed version to be stored in Orthanc (encapsulated PDF + Basic Text SR). Written in
    the transaction of the signature; the UIDs are chosen before the first attempt, so a retry
    stores the same objects again (Orthanc answers AlreadyStored) instead of duplicates."""

    version = models.OneToOneField(ReportVersion, on_delete=models.PROTECT, related_name="export")
    state = models.CharField(max_length=16, choices=ExportState.choices, default=ExportState.PENDING)
    pdf_sop_instance_uid = models.CharField(max_length=64)
    sr_sop_instance_uid = models.CharField(max_length=64)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    tried_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "tried_at"])]
