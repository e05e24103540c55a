"""AI pre-read results: one run per study and set of enabled models, one row per scored image.

A run is keyed by (study, models_key): a redelivered task finds its run and resumes it, a new
model version makes a new run and the old ones stay as history (only one is current).
"""

from django.db import models
from django.db.models import Q
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from .reasons import render as render_reason


class Outcome(models.TextChoices):
    RUNNING = "running", _("En cours")
    SCORED = "scored", _("Analysé")
    REFUSED = "refused", _("Hors du champ du modèle")
    FAILED = "failed", _("Pré-lecture échouée")


class ModelFacts(models.Model):
    """Which model produced a result, and what it said about why it did not score."""

    status: str  # an Outcome, defined by each concrete model

    model_name = models.CharField(max_length=100, blank=True)
    model_version = models.CharField(max_length=50, blank=True)
    model_sha256 = models.CharField(max_length=64, blank=True)
    demo = models.BooleanField(default=False)
    urgency = models.FloatField(null=True, blank=True)
    critical_flags = models.JSONField(default=list, blank=True)  # the model's label names
    # The display names of those labels, {name: {"fr": ..., "en": ...}}, from the model's spec.
    flag_names = models.JSONField(default=dict, blank=True)
    draft_fr = models.TextField(blank=True)
    draft_en = models.TextField(blank=True)
    # Why it did not score: a code and its parameters; the sentence is rendered when shown.
    reason_code = models.CharField(max_length=40, blank=True)
    reason_params = models.JSONField(default=dict, blank=True)

    class Meta:
        abstract = True

    @property
    def is_scored(self) -> bool:
        return self.status == Outcome.SCORED

    @property
    def is_refused(self) -> bool:
        return self.status == Outcome.REFUSED

    @property
    def is_failed(self) -> bool:
        return self.status == Outcome.FAILED

    @property
    def critical_findings(self) -> list[str]:
        """The critical flags as a radiologist reads them, in the active language."""
        lang = "en" if (get_language() or "fr").startswith("en") else "fr"
        return [self.flag_names.get(f, {}).get(lang) or f for f in self.critical_flags]

    @property
    def reason(self) -> str:
        return render_reason(self.reason_code, self.reason_params) if self.reason_code else ""

    @property
    def model_label(self) -> str:
        return f"{self.model_name} v{self.model_version}" if self.model_name else ""


class PreRead(ModelFacts):
    """The pre-read of one study with one set of models; its fields summarise the images."""

    study = models.ForeignKey("studies.Study", on_delete=models.CASCADE, related_name="prereads")
    # sha256 over the enabled models' hashes: the same models never score a study twice.
    models_key = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RUNNING)
    is_current = models.BooleanField(default=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    images_scored = models.PositiveSmallIntegerField(default=0)
    images_total = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    total_ms = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]
        verbose_name = _("pré-lecture IA")
        constraints = [
            models.UniqueConstraint(fields=["study", "models_key"], name="one_preread_per_models"),
            models.UniqueConstraint(
                fields=["study"], condition=Q(is_current=True), name="one_current_preread"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.study_id} {self.status} {self.model_label}".strip()

    @property
    def is_finished(self) -> bool:
        return self.status != Outcome.RUNNING

    @property
    def draft_label(self) -> str:
        """The draft's first line: « Brouillon IA — modèle X vN — à vérifier (…) »."""
        return self.draft_fr.split("\n", 1)[0]

    @property
    def draft_body(self) -> str:
        """The draft without its label line: what goes into the report editor."""
        return self.draft_fr.split("\n", 1)[1].strip() if "\n" in self.draft_fr else ""


class ImageResult(ModelFacts):
    """What the model said about one instance (scored, or refused/failed with the reason)."""

    preread = models.ForeignKey(PreRead, on_delete=models.CASCADE, related_name="images")
    instance = models.ForeignKey("studies.Instance", on_delete=models.CASCADE, related_name="ai_results")
    status = models.CharField(max_length=16, choices=Outcome.choices)
    outputs = models.JSONField(default=dict, blank=True)
    boxes = models.JSONField(default=list, blank=True)
    heatmap_png = models.BinaryField(null=True, blank=True)
    columns = models.PositiveIntegerField(null=True, blank=True)
    rows = models.PositiveIntegerField(null=True, blank=True)
    # What the library said that has no column of its own: warnings and quality findings (codes
    # with parameters), regression values, positive labels, pixel spacing, what the heatmap covers.
    details = models.JSONField(default=dict, blank=True)
    timings_ms = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["preread", "instance"], name="one_result_per_image"),
        ]

    @property
    def has_heatmap(self) -> bool:
        return bool(self.details.get("heatmap"))

    @property
    def notes(self) -> list[str]:
        """Warnings and quality findings, as sentences in the reader's language."""
        found = [*self.details.get("warnings", []), *self.details.get("quality", [])]
        return [render_reason(f["code"], f.get("params")) for f in found]

    def box_percentages(self) -> list[dict]:
        """Boxes as percentages of the image, for CSS overlays on a preview of any size."""
        if not self.columns or not self.rows:
            return []
        return [
            {
                "label": b["label"],
                "score": b["score"],
                "left": 100 * b["x0"] / self.columns,
                "top": 100 * b["y0"] / self.rows,
                "width": 100 * (b["x1"] - b["x0"]) / self.columns,
                "height": 100 * (b["y1"] - b["y0"]) / self.rows,
            }
            for b in self.boxes
        ]


class ShadowModel(models.Model):
    """A model or a threshold under trial (shadow mode): after the live pre-read, it runs on the
    same live case and its result goes to ShadowResult, a table the worklist never reads, so a
    site measures it against the signed reports (the dashboard) before trusting it."""

    name = models.SlugField(_("nom"), max_length=60, unique=True)
    # A model package (manifest.json + model.onnx); blank: the live models' own results again.
    package_dir = models.CharField(_("dossier du modèle"), max_length=500, blank=True)
    # Flag a case when its urgency reaches this; empty: the model's own label thresholds.
    threshold = models.FloatField(_("seuil d'urgence"), null=True, blank=True)
    active = models.BooleanField(_("actif"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("modèle en observation")

    def __str__(self) -> str:
        return self.name


class ShadowResult(ModelFacts):
    """What one shadow model said of one study: measured, never ranked."""

    shadow = models.ForeignKey(ShadowModel, on_delete=models.CASCADE, related_name="results")
    study = models.ForeignKey("studies.Study", on_delete=models.CASCADE, related_name="shadow_results")
    status = models.CharField(max_length=16, choices=Outcome.choices)
    # The case counts as flagged by this model (the dashboard's sensitivity and specificity).
    flagged = models.BooleanField(default=False)
    images_scored = models.PositiveSmallIntegerField(default=0)
    finished_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-finished_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["shadow", "study"], name="one_shadow_result_per_study")
        ]


class ProvisionalPreRead(ModelFacts):
    """The pre-read of one preview of a study still arriving: provisional, never the study's
    pre-read. It ranks the study until a finished pre-read of the full images is current
    (worklist/facts.py), and is kept as history afterwards."""

    study = models.ForeignKey("studies.Study", on_delete=models.CASCADE, related_name="provisional_prereads")
    preview = models.ForeignKey("uploads.Preview", on_delete=models.CASCADE, related_name="prereads")
    models_key = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Outcome.choices)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("pré-lecture provisoire (aperçu)")
        constraints = [
            models.UniqueConstraint(fields=["preview", "models_key"], name="one_provisional_per_preview"),
        ]

    def __str__(self) -> str:
        return f"{self.study_id} provisional {self.status} {self.model_label}".strip()
