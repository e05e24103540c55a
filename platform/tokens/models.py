from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Refusal(models.TextChoices):
    """Why a known token is not accepted (kept in the audit trail, never shown to the caller)."""

    REVOKED = "revoked", _("révoqué")
    EXPIRED = "expired", _("expiré")
    INACTIVE = "inactive", _("compte désactivé")
    MOVED = "moved", _("le compte a changé de site")


class MachineToken(models.Model):
    """The credential of one site agent: a name, its owner (the site's agent or technician
    account) and site, an expiry, its last use. The secret itself is never stored: only its
    prefix (to find the row, and to tell tokens apart) and an HMAC of it (tokens.crypto)."""

    name = models.CharField(_("nom"), max_length=100)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("compte"),
        on_delete=models.CASCADE,
        related_name="machine_tokens",
    )
    site = models.ForeignKey(
        "accounts.Site",
        verbose_name=_("site"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="machine_tokens",
    )
    prefix = models.CharField(_("préfixe"), max_length=16, db_index=True, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("créé le"), default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("créé par"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    expires_at = models.DateTimeField(_("expire le"))
    last_used_at = models.DateTimeField(_("dernière utilisation"), null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(_("depuis l'adresse"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("révoqué le"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("révoqué par"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("jeton d'agent")
        verbose_name_plural = _("jetons d'agent")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def refusal(self, now: datetime | None = None) -> Refusal | None:
        """Why this token may not be used now, or None if it may."""
        now = now or timezone.now()
        if self.revoked_at is not None:
            return Refusal.REVOKED
        if self.expires_at <= now:
            return Refusal.EXPIRED
        if not self.user.is_active:
            return Refusal.INACTIVE
        if self.site_id is not None and self.user.site_id != self.site_id:
            return Refusal.MOVED
        return None

    @property
    def state(self) -> str:
        refusal = self.refusal()
        return str(refusal.label) if refusal else str(_("actif"))
