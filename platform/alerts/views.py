"""Pages of the alerts app: the acknowledgement link, Kannel's callbacks, the alerts board, the duty
page and each person's notification settings."""

from __future__ import annotations

import hmac
from datetime import timedelta
from typing import cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts.models import User
from ingest.quota import rate_limited
from studies import access

from . import acknowledgement, service
from .forms import ConfirmCodeForm, NotificationSettingsForm, PhoneForm
from .links import alert_pk_from_token
from .models import AckVia, Alert, Channel, NotificationSettings, OnCallEntry, Status
from .outbox import record_delivery_report

ACK_LINK_DAYS = 7


def _callback_allowed(request: HttpRequest) -> bool:
    """Kannel's calls carry the shared token; without one configured, only from this machine."""
    token = settings.ALERTS_CALLBACK_TOKEN
    if token:
        return hmac.compare_digest(request.GET.get("token", ""), token)
    return request.META.get("REMOTE_ADDR") in ("127.0.0.1", "::1")


@csrf_exempt
def acknowledge_link(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows the case code and a button; POST acknowledges (as the alert's recipient)."""
    pk = alert_pk_from_token(token)
    alert = Alert.objects.filter(pk=pk, needs_ack=True).select_related("acked_by").first() if pk else None
    if alert is None or timezone.now() - alert.created_at > timedelta(days=ACK_LINK_DAYS):
        raise Http404
    verdict = ""
    if request.method == "POST":
        verdict = acknowledgement.acknowledge(alert, by=alert.recipient, via=AckVia.LINK)
    closing = (
        Alert.objects.filter(chain=alert.chain, acked_at__isnull=False).select_related("acked_by").first()
    )
    return render(
        request,
        "alerts/ack.html",
        {"alert": alert, "closing": closing, "verdict": verdict, "code": alert.params.get("code", "")},
    )


@require_GET
@rate_limited(  # per sending phone and overall; only Kannel's own calls count (no lock-out by strangers)
    "sms_reply",
    lambda request: {"sender": request.GET.get("from") or None, "all": "*"},
    only_if=_callback_allowed,
)
def kannel_incoming(request: HttpRequest) -> HttpResponse:
    """Kannel's sms-service get-url: an SMS someone sent to our number. The body is the reply."""
    if not _callback_allowed(request):
        raise PermissionDenied
    _verdict, reply = acknowledgement.acknowledge_by_sms(
        sender=request.GET.get("from", ""), text=request.GET.get("text", "")
    )
    return HttpResponse(reply, content_type="text/plain; charset=utf-8")


@require_GET
def kannel_dlr(request: HttpRequest) -> HttpResponse:
    """Kannel's dlr-url: a delivery report for one attempt (never an acknowledgement)."""
    if not _callback_allowed(request):
        raise PermissionDenied
    try:
        report_type = int(request.GET.get("type", ""))
    except ValueError:
        return HttpResponse("bad type", status=400, content_type="text/plain")
    found = record_delivery_report(
        reference=request.GET.get("ref", ""), report_type=report_type, smsc_id=request.GET.get("smsc_id", "")
    )
    return HttpResponse("ok" if found else "unknown", content_type="text/plain")


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)  # behind login_required


def _on_duty(user: User) -> bool:
    return access.may_take_calls(user, on_call=OnCallEntry.objects.filter(user=user, active=True).exists())


@login_required
def board(request: HttpRequest) -> HttpResponse:
    """Admins: the alerts waiting, failed and unacknowledged; resend from here."""
    if not access.may_manage_alerts(_user(request)):
        raise Http404
    base = Alert.objects.select_related("recipient", "acked_by").order_by("-created_at")
    return render(
        request,
        "alerts/board.html",
        {
            "pending": base.filter(status__in=[Status.PENDING, Status.SENDING]).exclude(
                channel=Channel.PHONE
            )[:100],
            "failed": base.filter(Q(status=Status.FAILED) | Q(reason_code="not_delivered"))[:100],
            "unacked": base.filter(
                needs_ack=True, acked_at__isnull=True, status=Status.SENT, escalated_at__isnull=True
            )[:100],
            "phone_tasks": base.filter(channel=Channel.PHONE, status=Status.PENDING)[:50],
        },
    )


@login_required
@require_POST
def resend(request: HttpRequest, pk: int) -> HttpResponse:
    if not access.may_manage_alerts(_user(request)):
        raise Http404
    alert = get_object_or_404(Alert, pk=pk)
    if service.resend(alert):
        messages.success(request, _("Alerte remise dans la file d'envoi."))
    else:
        messages.error(request, _("Seule une alerte en échec ou annulée peut être renvoyée."))
    return redirect("alerts:board")


@login_required
def duty(request: HttpRequest) -> HttpResponse:
    """Whoever is on duty: the people to phone now, with their number."""
    if not _on_duty(_user(request)):
        raise Http404
    tasks = Alert.objects.filter(channel=Channel.PHONE, status=Status.PENDING).order_by("created_at")
    return render(request, "alerts/duty.html", {"tasks": tasks})


@login_required
@require_POST
def phone_done(request: HttpRequest, pk: int) -> HttpResponse:
    """The call was made and the person answered: that closes the chain."""
    if not _on_duty(_user(request)):
        raise Http404
    task = get_object_or_404(Alert, pk=pk, channel=Channel.PHONE)
    acknowledgement.acknowledge(task, by=_user(request), via=AckVia.PHONE)
    messages.success(request, _("Appel enregistré : l'alerte est close."))
    return redirect("alerts:duty")


@login_required
def my_settings(request: HttpRequest) -> HttpResponse:
    prefs, _created = NotificationSettings.objects.get_or_create(user=_user(request))
    form = NotificationSettingsForm(instance=prefs)
    phone_form = PhoneForm(initial={"phone": prefs.phone or _user(request).phone})
    code_form = ConfirmCodeForm()
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "settings":
            form = NotificationSettingsForm(request.POST, instance=prefs)
            if form.is_valid():
                form.save()
                messages.success(request, _("Préférences enregistrées."))
                return redirect("alerts:settings")
        elif action == "phone":
            phone_form = PhoneForm(request.POST)
            if phone_form.is_valid() and service.send_phone_confirmation(
                _user(request), phone_form.cleaned_data["phone"]
            ):
                messages.success(request, _("Un code de confirmation vous a été envoyé par SMS."))
                return redirect("alerts:settings")
            phone_form.add_error("phone", _("Numéro de téléphone invalide."))
        elif action == "confirm":
            code_form = ConfirmCodeForm(request.POST)
            if code_form.is_valid() and service.confirm_phone(_user(request), code_form.cleaned_data["code"]):
                messages.success(request, _("Numéro confirmé : vous recevrez les alertes par SMS."))
                return redirect("alerts:settings")
            code_form.add_error("code", _("Code incorrect ou expiré."))
    return render(
        request,
        "alerts/settings.html",
        {"form": form, "phone_form": phone_form, "code_form": code_form, "prefs": prefs},
    )
