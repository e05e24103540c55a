"""The alerts outbox: one row per (event, recipient, channel), written in the event's transaction.

A row is the record and the timer at once: `next_attempt_at` (a retry, or the end of quiet hours),
`lease_until` (a send in flight) and `escalate_at` (the acknowledgement deadline) are read by the
periodic task (alerts.tasks.run_due_alerts); nothing waits on a broker countdown.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Kind(models.TextChoices):
    STAT_ARRIVED = "stat_arrived", _("Examen STAT arrivé")
    AI_CRITICAL = "ai_critical", _("Signal critique de la pré-lecture IA")
    SLA_BREACH = "sla_breach", _("Délai de lecture bientôt dépassé, examen non pris")
    CRITICAL_FINDING = "critical_finding", _("Résultat critique dans un compte rendu signé")
    RETURNED = "returned", _("Images non diagnostiques : examen à refaire")
    REPORT_READY = "report_ready", _("Compte rendu disponible")
    PHONE_CONFIRMATION = "phone_confirmation", _("Confirmation du numéro de téléphone")


class Category(models.TextChoices):
    """How urgent, as the ACR grades critical results; critical alerts are never held back."""

    CRITICAL = "critical", _("Critique (minutes)")
    URGENT = "urgent", _("Urgent (heures)")
    SIGNIFICANT = "significant", _("Inattendu significatif (jours)")
    ROUTINE = "routine", _("Routine")


URGENCY_RANK = {Category.CRITICAL: 0, Category.URGENT: 1, Category.SIGNIFICANT: 2, Category.ROUTINE: 3}


class Channel(models.TextChoices):
    SMS = "sms", _("SMS")
    EMAIL = "email", _("Courriel")
    PHONE = "phone", _("Appel téléphonique (tâche)")
    # Nobody could be reached (no on-call person, or one with no confirmed number and no email):
    # written all the same, as a failure on the board, so an alert is never silently not sent.
    NONE = "none", _("Aucun moyen de joindre")


class Status(models.TextChoices):
    PENDING = "pending", _("En attente d'envoi")
    SENDING = "sending", _("En cours d'envoi")
    SENT = "sent", _("Envoyé")
    FAILED = "failed", _("Échec")
    CANCELLED = "cancelled", _("Annulé")
    DONE = "done", _("Appel fait")  # a phone task someone completed


class AckVia(models.TextChoices):
    LINK = "link", _("Lien")
    SMS = "sms", _("Réponse SMS")
    PAGE = "page", _("Page des alertes")
    PHONE = "phone", _("Appel téléphonique")


class Alert(models.Model):
    kind = models.CharField(max_length=24, choices=Kind.choices)
    category = models.CharField(max_length=16, choices=Category.choices)
    study = models.ForeignKey(
        "studies.Study", null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    # The event that caused it (a lifecycle move); empty for periodic checks and confirmations.
    event = models.ForeignKey(
        "studies.StudyEvent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # One chain per cause: the first recipients, then each escalation step; an acknowledgement by
    # anyone on the chain closes it.
    chain = models.CharField(max_length=80, db_index=True)
    step = models.PositiveSmallIntegerField(default=0)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    address = models.CharField(max_length=254)  # phone (E.164) or email address
    recipient_role = models.CharField(max_length=24, blank=True)  # on_call, coordinator, site ...
    language = models.CharField(max_length=8, default="fr")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    # One event never alerts one person twice on one channel.
    dedupe_key = models.CharField(max_length=200, unique=True)
    params = models.JSONField(default=dict, blank=True)  # codes and numbers, never a patient's name

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    gateway_id = models.CharField(max_length=100, blank=True)
    reason_code = models.CharField(max_length=40, blank=True)  # why it failed or was cancelled
    error = models.CharField(max_length=300, blank=True)

    needs_ack = models.BooleanField(default=False)
    escalate_at = models.DateTimeField(null=True, blank=True, db_index=True)
    escalated_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    acked_at = models.DateTimeField(null=True, blank=True)
    acked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ack_via = models.CharField(max_length=8, choices=AckVia.choices, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name = _("alerte")
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["study", "created_at"]),
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(address="") | Q(channel="none"), name="alert_has_address"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.channel} #{self.pk} ({self.status})"

    @property
    def urgency_rank(self) -> int:
        return URGENCY_RANK[Category(self.category)]


class Outcome(models.TextChoices):
    IN_FLIGHT = "in_flight", _("Remis à la passerelle, réponse attendue")
    ACCEPTED = "accepted", _("Accepté par la passerelle")
    FAILED = "failed", _("Refusé ou passerelle injoignable")
    UNKNOWN = "unknown", _("Interrompu : issue inconnue")


class AlertAttempt(models.Model):
    """One try to hand an alert to its gateway, and what the gateway said then and later (DLR)."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="attempts_made")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=12, choices=Outcome.choices, default=Outcome.IN_FLIGHT)
    backend = models.CharField(max_length=24, blank=True)
    gateway_id = models.CharField(max_length=100, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error = models.CharField(max_length=300, blank=True)
    # The last delivery report (Kannel's %d: 1 delivered, 2 failed, 4 buffered, 8 SMSC, 16 rejected).
    dlr_status = models.SmallIntegerField(null=True, blank=True)
    dlr_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["started_at", "pk"]


class GatewayState(models.Model):
    """A gateway found unreachable: alerts wait on it (not each on its own backoff), then go out
    most urgent first when a probe gets through."""

    channel = models.CharField(max_length=8, primary_key=True)
    down_since = models.DateTimeField(null=True, blank=True)
    retry_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)


class OnCallEntry(models.Model):
    """The admin's simple on-call list (until the assignment app's rota lands: alerts.recipients)."""

    class Role(models.TextChoices):
        RADIOLOGIST = "radiologist", _("Radiologue de garde")
        COORDINATOR = "coordinator", _("Coordinateur")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    role = models.CharField(max_length=16, choices=Role.choices)
    position = models.PositiveSmallIntegerField(default=0, help_text=_("Ordre d'appel (0 d'abord)."))
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["role", "position", "pk"]
        verbose_name = _("personne de garde")
        constraints = [models.UniqueConstraint(fields=["user", "role"], name="one_oncall_entry_per_role")]

    def __str__(self) -> str:
        return f"{self.get_role_display()} {self.position}: {self.user}"


class NotificationSettings(models.Model):
    """A person's own choices; the phone is used for SMS only once confirmed by a code."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_settings"
    )
    language = models.CharField(_("langue"), max_length=8, default="fr", choices=settings.LANGUAGES)
    sms_enabled = models.BooleanField(_("par SMS"), default=True)
    email_enabled = models.BooleanField(_("par courriel"), default=True)
    report_ready = models.BooleanField(_("compte rendu disponible"), default=True)
    phone = models.CharField(_("téléphone"), max_length=32, blank=True)
    phone_confirmed_at = models.DateTimeField(null=True, blank=True)
    confirm_code_hash = models.CharField(max_length=64, blank=True)
    confirm_sent_at = models.DateTimeField(null=True, blank=True)
    quiet_start = models.TimeField(_("début des heures calmes"), null=True, blank=True)
    quiet_end = models.TimeField(_("fin des heures calmes"), null=True, blank=True)

    class Meta:
        verbose_name = _("préférences de notification")


class SiteAlertSettings(models.Model):
    """Per site: whether the technicians get « compte rendu disponible », and the contact's language."""

    site = models.OneToOneField("accounts.Site", on_delete=models.CASCADE, related_name="alert_settings")
    report_ready = models.BooleanField(_("compte rendu disponible"), default=True)
    language = models.CharField(_("langue"), max_length=8, default="fr", choices=settings.LANGUAGES)

    class Meta:
        verbose_name = _("alertes du site")
