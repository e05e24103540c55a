from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Report(models.Model):
    """The radiologist's report on a study. Once signed it never changes."""

    study = models.OneToOneField("studies.Study", on_delete=models.PROTECT, related_name="report")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    findings = models.TextField(_("résultats"), blank=True)
    conclusion = models.TextField(_("conclusion"), blank=True)
    signed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("compte rendu")

    @property
    def is_signed(self) -> bool:
        return self.signed_at is not None
