"""The audit trail: one row per thing a person or machine did (or was refused), never changed.

In PostgreSQL a trigger (migration 0002) refuses every UPDATE and DELETE of this table, whoever
sends it, the ORM or raw SQL. No foreign key constraint either: a row names its actor and site by
id and keeps their name and role as they were, so deleting a user changes nothing here (a
constraint's ON DELETE would have to update the row, which the trigger refuses).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Outcome(models.TextChoices):
    """RFC 3881 / IHE ATNA EventOutcomeIndicator: 0 success, 4 minor failure, 8 serious failure."""

    OK = "ok", _("réussi")
    DENIED = "denied", _("refusé")
    FAILED = "failed", _("échoué")


class AuditEvent(models.Model):
    # Its own identity, made where the event happened: a row replayed from the spool file is
    # inserted once whatever the number of replays (ON CONFLICT DO NOTHING).
    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    at = models.DateTimeField(_("date"))
    action = models.CharField(_("action"), max_length=64)  # dotted code: "study.viewed"
    outcome = models.CharField(_("résultat"), max_length=8, choices=Outcome.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("auteur"),
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_username = models.CharField(_("identifiant"), max_length=150, blank=True)
    actor_role = models.CharField(_("rôle"), max_length=16, blank=True)
    client_address = models.GenericIPAddressField(_("adresse du client"), null=True, blank=True)
    object_type = models.CharField(_("type d'objet"), max_length=64, blank=True)  # "studies.study"
    object_id = models.CharField(_("identifiant de l'objet"), max_length=64, blank=True)
    # Never patient data: a case code (KAYES-1234), a user name, a site code, "#12".
    object_label = models.CharField(_("objet"), max_length=120, blank=True)
    site = models.ForeignKey(
        "accounts.Site",
        verbose_name=_("site"),
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    request_id = models.CharField(_("requête"), max_length=64, blank=True)
    request_method = models.CharField(max_length=8, blank=True)
    request_path = models.CharField(max_length=300, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    # Written late, from the spool file, because the database refused it at the time.
    spooled = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("événement d'audit")
        verbose_name_plural = _("journal d'audit")
        indexes = [
            models.Index(fields=["-at", "-id"], name="audit_at"),
            models.Index(fields=["action", "-at"], name="audit_action_at"),
            models.Index(fields=["actor_username", "-at"], name="audit_actor_at"),
            models.Index(fields=["object_type", "object_id"], name="audit_object"),
            models.Index(fields=["object_label"], name="audit_label"),
            models.Index(fields=["site", "-at"], name="audit_site_at"),
            models.Index(fields=["client_address", "-at"], name="audit_address_at"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.action} {self.outcome} {self.actor_username}"
