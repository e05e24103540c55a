"""manage.py issue_token USERNAME --name "Kayes — poste radio 1" [--days N]: a machine token for
an install or a script (the secret is printed once, on stdout, alone on its line)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import User
from tokens import service


class Command(BaseCommand):
    help = "Émet un jeton d'agent pour un compte et affiche son secret (une seule fois)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", required=True)
        parser.add_argument("--days", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            user = User.objects.get(username=options["username"])
        except User.DoesNotExist as exc:
            raise CommandError(f"no user {options['username']!r}") from exc
        try:
            token, secret = service.issue(user, name=options["name"], days=options["days"])
        except service.TokenNotIssued as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(f"{token.name} ({token.prefix}…), expires {token.expires_at:%Y-%m-%d}")
        self.stdout.write(secret)
