"""The secret's shape and its hash: nothing here touches the database.

A secret is `jlb_<8 hex>_<43 url-safe characters>`: the first twelve characters are its prefix,
stored in clear to find the row and to tell tokens apart on a page; the rest carries 256 random
bits. Only an HMAC-SHA256 of the whole secret is stored.

Why not a password hasher (PBKDF2, Argon2): they are slow on purpose so that a stolen hash of a
human password (a few dozen bits of entropy) cannot be tried against a dictionary. A 256-bit
random secret has no dictionary: one HMAC is as safe, and costs microseconds where PBKDF2 costs
a good part of a second on every request of the site agent (a tus upload makes one per chunk).
The HMAC key (settings.TOKENS_HASH_KEY) also means a copy of the table alone cannot even test a
guess.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.utils.crypto import salted_hmac

PREFIX_MARK = "jlb_"
PREFIX_LENGTH = len(PREFIX_MARK) + 8
# A DRF token (40 hex characters) converted by migration 0002: its first 8 characters are its prefix.
LEGACY_LENGTH = 40
LEGACY_PREFIX_LENGTH = 8
MAX_SECRET_LENGTH = 200  # anything longer is not ours: refused before it is hashed


def new_secret() -> tuple[str, str]:
    """(secret, prefix) for a new token."""
    prefix = PREFIX_MARK + secrets.token_hex(4)
    return f"{prefix}_{secrets.token_urlsafe(32)}", prefix


def lookup_prefix(secret: str) -> str | None:
    """The prefix to find this secret's row by, or None if it cannot be one of ours."""
    if not secret or len(secret) > MAX_SECRET_LENGTH or not secret.isascii():
        return None
    if secret.startswith(PREFIX_MARK):
        if len(secret) <= PREFIX_LENGTH + 1 or secret[PREFIX_LENGTH] != "_":
            return None
        return secret[:PREFIX_LENGTH]
    if len(secret) == LEGACY_LENGTH:
        return secret[:LEGACY_PREFIX_LENGTH]
    return None


def digest(secret: str) -> str:
    """HMAC-SHA256 of the secret, hex: what the database keeps."""
    return salted_hmac(
        "joliba.tokens.MachineToken", secret, secret=settings.TOKENS_HASH_KEY, algorithm="sha256"
    ).hexdigest()
