"""DRF authentication by machine token: `Authorization: Token <secret>`, the header the site
agent has always sent (it replaces rest_framework.authentication.TokenAuthentication)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from . import service
from .models import MachineToken

KEYWORD = "Token"


def secret_from_header(header: bytes | str) -> str | None:
    """The secret of an `Authorization: Token <secret>` header; None for another scheme or
    none; "" for a malformed Token header (refused, never passed on to another scheme)."""
    if isinstance(header, bytes):
        try:
            header = header.decode("latin-1")
        except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
            return ""
    parts = header.split()
    if not parts or parts[0].lower() != KEYWORD.lower():
        return None
    return parts[1] if len(parts) == 2 else ""


class MachineTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, MachineToken] | None:
        secret = secret_from_header(get_authorization_header(request))
        if secret is None:
            return None
        token = service.authenticate_secret(secret, request=request) if secret else None
        if token is None:
            raise AuthenticationFailed(_("Jeton invalide, expiré ou révoqué."))
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD  # a 401 (not a 403) for a missing or refused token


class MachineTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[misc]
    """How the published schema describes it."""

    target_class = "tokens.authentication.MachineTokenAuthentication"
    name = "machineToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Token <secret> (docs/tokens.md)",
        }
