"""POST /api/v1/auth/token/: a site agent being configured gets its token with the site's
technician account (username, password, and a name for the token).

Only technician accounts: a radiologist or an admin must pass a second factor, which a password
sent by a script does not carry, so a stolen radiologist password yields no token here (an admin
issues tokens from the « Jetons des agents » page instead). The password is checked through
django.contrib.auth.authenticate with the request, so the login lockout applies to this door too.
"""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from audit.api import record

from . import service


def _refused(code: str, reason: str, http_status: int) -> Response:
    return Response({"code": code, "reason": reason}, status=http_status)


def _text(data: object, key: str) -> str:
    value = data.get(key) if hasattr(data, "get") else None
    return value if isinstance(value, str) else ""


@extend_schema(
    request=inline_serializer(
        "TokenRequest",
        {
            "username": serializers.CharField(),
            "password": serializers.CharField(),
            "name": serializers.CharField(required=False),
        },
    ),
    responses={
        201: inline_serializer(
            "TokenIssued",
            {
                "token": serializers.CharField(),
                "name": serializers.CharField(),
                "prefix": serializers.CharField(),
                "expires_at": serializers.DateTimeField(),
            },
        )
    },
)
@api_view(["POST"])
@authentication_classes([])
@permission_classes([AllowAny])
def obtain_token(request: Request) -> Response:
    http_request = request._request
    username, password = _text(request.data, "username"), _text(request.data, "password")
    if not username or not password:
        return _refused("credentials_required", _("Nom d'utilisateur et mot de passe requis."), 400)
    user = authenticate(request=http_request, username=username, password=password)
    if getattr(http_request, "axes_locked_out", False):
        return _refused(
            "locked_out", _("Trop d'essais : ce compte est bloqué un moment depuis cette adresse."), 429
        )
    if not isinstance(user, User):
        return _refused("invalid_credentials", _("Nom d'utilisateur ou mot de passe incorrect."), 400)
    if not user.is_technician or user.is_superuser:
        record(
            "token.created",
            request=http_request,
            actor=user,
            outcome="denied",
            detail={"reason": "second_factor_required", "role": user.role},
        )
        return _refused(
            "second_factor_required",
            _(
                "Un mot de passe seul ne donne un jeton qu'au compte technicien d'un agent de site. "
                "Les radiologues et les administrateurs passent par leur second facteur ; un "
                "administrateur émet les jetons depuis la page « Jetons des agents »."
            ),
            status.HTTP_403_FORBIDDEN,
        )
    name = _text(request.data, "name").strip() or f"agent {timezone.localdate().isoformat()}"
    try:
        token, secret = service.issue(user, name=name, by=user, request=request)
    except service.TokenNotIssued as exc:
        return _refused("not_issued", str(exc), 400)
    return Response(
        {"token": secret, "name": token.name, "prefix": token.prefix, "expires_at": token.expires_at},
        status=status.HTTP_201_CREATED,
    )
