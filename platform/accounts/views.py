"""Signing in (password, then a TOTP or backup code), enrolling a phone, the account page, the
lockout page and the rate-limited password reset: the platform's own French pages over
django-two-factor-auth, django-otp, django-axes and django-ratelimit."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

from axes.helpers import get_client_ip_address, get_cool_off
from django import forms
from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp import user_has_device
from django_otp.forms import otp_verification_failed
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_ratelimit.core import is_ratelimited
from two_factor import views as two_factor_views

from .events import announce
from .models import User
from .roles import needs_second_factor


def client_address(request: HttpRequest) -> str:
    """The client's address as the lockout sees it (JOLIBA_PROXY_COUNT proxies trusted)."""
    return get_client_ip_address(request) or ""


def _support() -> str:
    return settings.JOLIBA_SUPPORT_CONTACT or _("l'administrateur de la plateforme Joliba")


def _safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def locked_out(request: HttpRequest, original_response: Any = None, credentials: Any = None) -> HttpResponse:
    """django-axes' answer to a locked (user name, client address): how long, whom to call."""
    cool_off = get_cool_off(request)
    minutes = max(1, math.ceil(cool_off.total_seconds() / 60)) if cool_off else None
    if request.path.startswith("/api/") or "json" in request.headers.get("Accept", ""):
        detail = _("Trop d'essais : connexion bloquée depuis cette adresse pendant %(minutes)s minutes.") % {
            "minutes": minutes
        }
        response: HttpResponse = JsonResponse({"detail": detail, "code": "locked_out"}, status=429)
    else:
        response = render(
            request,
            "registration/locked_out.html",
            {"minutes": minutes, "support": _support(), "limit": settings.AXES_FAILURE_LIMIT},
            status=429,
        )
    if minutes:
        response["Retry-After"] = str(minutes * 60)
    return response


class LoginView(two_factor_views.LoginView):
    """The password, then (for anyone with a phone enrolled) the code; axes counts the failures."""

    template_name = "registration/login.html"

    def get_context_data(self, form: Any, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(form, **kwargs)
        context["expired"] = self.request.GET.get("expired") == "1"
        context["idle_minutes"] = round(settings.SESSION_COOKIE_AGE / 60)
        return context


class SetupView(two_factor_views.SetupView):
    """Enrolling a phone (TOTP): a QR code and the key in letters, then one code to confirm."""

    qrcode_url = "two_factor:qr"
    template_name = "accounts/setup.html"

    def done(self, form_list: Any, **kwargs: Any) -> HttpResponse:
        response = super().done(form_list, **kwargs)
        device = TOTPDevice.objects.filter(user=self.request.user, confirmed=True).order_by("-pk").first()
        announce("otp.enrolled", request=self.request, obj=device, detail={"method": "totp"})
        query = urlencode({"next": self.get_redirect_url()}) if self.get_redirect_url() else ""
        if response.status_code in (301, 302):
            return redirect(reverse("two_factor:backup_tokens") + (f"?{query}" if query else ""))
        return response

    def get_context_data(self, form: Any, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(form, **kwargs)
        if "secret_key" in context:  # the key in groups of four, to type into a phone without a camera
            key = context["secret_key"]
            context["secret_key_groups"] = " ".join(key[i : i + 4] for i in range(0, len(key), 4))
        context["next"] = self.get_redirect_url()
        return context


class QRGeneratorView(two_factor_views.QRGeneratorView):
    def get_issuer(self) -> str:
        return settings.OTP_TOTP_ISSUER


class BackupTokensView(two_factor_views.BackupTokensView):
    """Ten single-use backup codes, for the day the phone is lost or flat."""

    template_name = "accounts/backup_tokens.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["next"] = _safe_next(self.request, "")
        return context

    def form_valid(self, form: Any) -> HttpResponse:
        super().form_valid(form)
        announce("otp.backup_codes_made", request=self.request, detail={"count": self.number_of_tokens})
        target = reverse("two_factor:backup_tokens")
        following = _safe_next(self.request, "")
        return redirect(target + (f"?{urlencode({'next': following})}" if following else ""))


class CodeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Code"),
        max_length=16,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )

    def __init__(self, user: User, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.device: Device | None = None

    def clean_code(self) -> str:
        code = "".join(self.cleaned_data["code"].split()).lower()
        # Six digits: the phone's TOTP code; anything else: a backup code (single use).
        devices: list[Device] = list(
            TOTPDevice.objects.devices_for_user(self.user, confirmed=True)
            if code.isdigit() and len(code) == 6
            else StaticDevice.objects.devices_for_user(self.user, confirmed=True)
        )
        for device in devices:
            allowed, _extra = device.verify_is_allowed()
            if not allowed:
                raise forms.ValidationError(_("Trop de codes erronés : attendez un peu avant de réessayer."))
            if device.verify_token(code):
                self.device = device
                return code
        otp_verification_failed.send(sender=CodeForm, user=self.user)
        raise forms.ValidationError(_("Code incorrect."))


@never_cache
@login_required
def verify_second_factor(request: HttpRequest) -> HttpResponse:
    """For someone signed in whose session has not (yet) seen the second factor."""
    user = request.user
    assert isinstance(user, User)
    following = _safe_next(request, reverse("home"))
    if user.is_verified():  # type: ignore[attr-defined]
        return redirect(following)
    if not user_has_device(user, confirmed=True):
        return redirect(f"{reverse('two_factor:setup')}?{urlencode({'next': following})}")
    form = CodeForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid() and form.device is not None:
        otp_login(request, form.device)
        return redirect(following)
    return render(request, "accounts/verify.html", {"form": form, "next": following, "support": _support()})


@never_cache
@login_required
def account(request: HttpRequest) -> HttpResponse:
    """My account: second factor, backup codes left, password, sign out everywhere."""
    user = request.user
    assert isinstance(user, User)
    backup_left = sum(
        d.token_set.count() for d in StaticDevice.objects.devices_for_user(user, confirmed=True)
    )
    context = {
        "enrolled": user_has_device(user, confirmed=True),
        "totp": TOTPDevice.objects.devices_for_user(user, confirmed=True).exists(),
        "backup_left": backup_left,
        "required": settings.JOLIBA_2FA_REQUIRED and needs_second_factor(user),
        "idle_minutes": round(settings.SESSION_COOKIE_AGE / 60),
        "support": _support(),
    }
    return render(request, "accounts/account.html", context)


@require_POST
@login_required
def logout_everywhere(request: HttpRequest) -> HttpResponse:
    """End every session of this user, on every machine, this one included."""
    user = request.user
    assert isinstance(user, User)
    User.objects.filter(pk=user.pk).update(session_generation=user.session_generation + 1)
    announce("session.logout_everywhere", request=request, obj=user)
    logout(request)
    return redirect(f"{reverse('login')}?{urlencode({'everywhere': '1'})}")


def _reset_email(group: str, request: HttpRequest) -> str:
    return request.POST.get("email", "").strip().lower()


def _reset_address(group: str, request: HttpRequest) -> str:
    return client_address(request)


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset, limited per client address and per e-mail address (django-ratelimit)."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        by_address = is_ratelimited(
            request,
            group="password_reset:address",
            key=_reset_address,
            rate=settings.PASSWORD_RESET_RATE_PER_ADDRESS,
            method="POST",
            increment=True,
        )
        by_email = is_ratelimited(
            request,
            group="password_reset:email",
            key=_reset_email,
            rate=settings.PASSWORD_RESET_RATE_PER_EMAIL,
            method="POST",
            increment=True,
        )
        if by_address or by_email:
            return render(
                request, "registration/password_reset_limited.html", {"support": _support()}, status=429
            )
        return super().post(request, *args, **kwargs)
