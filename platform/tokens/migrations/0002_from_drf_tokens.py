"""DRF's authtoken tokens (kept in clear) become hashed machine tokens named "migrated", so no
site agent stops on upgrade; then the clear-text table is dropped. Each gets the default lifetime
from today. Installs should still issue named tokens and revoke these (docs/tokens.md)."""

import datetime
from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.utils import timezone
from django.utils.dateparse import parse_datetime


def _aware(value):
    """A raw cursor gives SQLite's timestamps as text or naive datetimes (UTC, as Django wrote them)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, datetime.UTC)
    return value


def convert_drf_tokens(apps, schema_editor):
    from tokens import crypto

    connection = schema_editor.connection
    if "authtoken_token" not in connection.introspection.table_names():
        return  # a new install, or DRF's tokens were never used
    MachineToken = apps.get_model("tokens", "MachineToken")
    User = apps.get_model("accounts", "User")
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, user_id, created FROM authtoken_token")
        rows = cursor.fetchall()
    now = timezone.now()
    for key, user_id, created in rows:
        if len(key) != crypto.LEGACY_LENGTH:
            continue  # not a key DRF made: cannot be recognised, dropped with the table
        user = User.objects.get(pk=user_id)
        MachineToken.objects.create(
            name="migrated",
            user_id=user_id,
            site_id=user.site_id,
            prefix=key[: crypto.LEGACY_PREFIX_LENGTH],
            digest=crypto.digest(key),
            created_at=_aware(created) or now,
            expires_at=now + timedelta(days=settings.TOKENS_DEFAULT_DAYS),
        )
    schema_editor.execute("DROP TABLE authtoken_token")
    # rest_framework.authtoken is no longer installed: forget its migrations, so that adding it
    # back one day starts from an empty, correct table instead of a missing one.
    schema_editor.execute("DELETE FROM django_migrations WHERE app = 'authtoken'")


class Migration(migrations.Migration):
    dependencies = [("tokens", "0001_initial"), ("accounts", "0003_reader_profiles_for_existing_radiologists")]

    operations = [migrations.RunPython(convert_drf_tokens, migrations.RunPython.noop)]
