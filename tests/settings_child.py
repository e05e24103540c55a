"""The platform's settings as a fresh process computes them from an environment: production's
refusals and defaults are decided at import, so each check starts a Python of its own."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

from tests.paths import REPO

POSTGRES = os.environ.get("DATABASE_URL", "")
if not POSTGRES.startswith("postgres"):
    POSTGRES = "postgres://postgres@127.0.0.1:5432/test"

# This machine's development values that must not leak into a "production" child.
_DEVELOPMENT = ("SECURE_", "SESSION_", "CSRF_", "DJANGO_", "EMAIL_", "JOLIBA_", "SECRET_KEY", "DEBUG")


def production_env(**overrides: str | None) -> dict[str, str]:
    """What a production install sets (deploy/joliba.env.example); an override of None removes
    the variable (to see production refuse to start without it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DEVELOPMENT)}
    env.update(
        JOLIBA_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="joliba.example.ml",
        DATABASE_URL=POSTGRES,
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        ALERTS_CALLBACK_TOKEN=secrets.token_urlsafe(24),  # Kannel (production's SMS default) needs it
        DJANGO_SETTINGS_MODULE="joliba.settings",
        PYTHONPATH=str(REPO / "platform"),
    )
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`code` in a fresh interpreter under `env`, from the repository (output captured)."""
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def setup_in(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """django.setup() under `env`: production's refusals end it with a non-zero status."""
    return run_python("import django; django.setup()", env)
