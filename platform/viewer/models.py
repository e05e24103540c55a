"""What the viewer keeps per instance: the header facts it needs (read once, at rendition time, so
the manifest never asks Orthanc) and the rendition files (bytes under JOLIBA_RENDITIONS_ROOT,
named by their sha256: the same bytes always have the same URL, which can then be cached forever).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class State(models.TextChoices):
    PENDING = "pending", _("En attente")
    DONE = "done", _("Prêt")
    FAILED = "failed", _("Impossible")  # a verdict: the pixels cannot be rendered (error_code says why)


class ViewerImage(models.Model):
    """One instance as the viewer sees it: its facts and the verdict of rendering it."""

    instance = models.OneToOneField("studies.Instance", on_delete=models.CASCADE, related_name="viewer_image")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    # Manifest fields read from the DICOM header (columns, rows, frames, photometric, modality_lut,
    # stored, windows, stretch, spacing, cine_fps, series number and description).
    facts = models.JSONField(default=dict, blank=True)
    # Why there is no full rendition (a pixel code, inference.pixel_codes, or one of viewer's own):
    # set with state FAILED; set with state PENDING while the archive could not be reached.
    error_code = models.CharField(max_length=40, blank=True)
    error_params = models.JSONField(default=dict, blank=True)
    # Renderings started with the file in hand, killed ones included.
    attempts = models.PositiveSmallIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("image du visualiseur")
        indexes = [models.Index(fields=["state"], name="viewer_image_state")]

    def __str__(self) -> str:
        return f"{self.instance_id} {self.state} {self.error_code}".strip()


class Kind(models.TextChoices):
    PREVIEW = "preview", _("Aperçu")
    FULL = "full", _("Pleine fidélité")


class Format(models.TextChoices):
    WEBP = "webp", "WebP (8-bit, windowed, lossy)"
    WEBP8 = "webp8", "WebP lossless, 8-bit stored pixels"
    WEBP16 = "webp16", "WebP lossless, 16-bit stored pixels (R = high byte, G = low byte)"


class Rendition(models.Model):
    """One rendition file: the preview, or one frame of the full-fidelity rendition."""

    instance = models.ForeignKey("studies.Instance", on_delete=models.CASCADE, related_name="renditions")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    frame = models.PositiveIntegerField(default=0)
    format = models.CharField(max_length=8, choices=Format.choices)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    digest = models.CharField(max_length=64)  # sha256 of the bytes: the file's name
    size = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["instance", "kind", "frame"]
        constraints = [
            models.UniqueConstraint(fields=["instance", "kind", "frame"], name="one_rendition_per_frame"),
        ]

    def __str__(self) -> str:
        return f"{self.instance_id} {self.name}"

    @property
    def name(self) -> str:
        """The URL's last segment (without .webp): kind, frame and enough of the digest to change
        whenever the bytes do."""
        return f"{self.kind}-{self.frame}-{self.digest[:16]}"

    @property
    def path(self) -> str:
        """Where the bytes are, relative to JOLIBA_RENDITIONS_ROOT."""
        from .storage import relative_path

        return relative_path(self.digest)
