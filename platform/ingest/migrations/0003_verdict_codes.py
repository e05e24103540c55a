"""Existing verdicts keep their code, with empty parameters; their sentences go next."""

from django.db import migrations, models


def codes_for_repairs_and_settle_old(apps, schema_editor):
    """Existing rows keep their code (params stay empty). An accepted file whose sentence said
    its File Meta was added gets that code; sendings made before today are all over."""
    FileVerdict = apps.get_model("ingest", "FileVerdict")
    Submission = apps.get_model("ingest", "Submission")
    FileVerdict.objects.filter(code="ok").exclude(reason="").update(code="file_meta_added")
    FileVerdict.objects.filter(code="too_large", reason__startswith="Fichier trop volumineux").update(
        code="file_too_large")
    Submission.objects.filter(settled_at=None).update(settled_at=models.F("created_at"))


class Migration(migrations.Migration):

    dependencies = [("ingest", "0002_submission")]

    operations = [
        migrations.RunPython(codes_for_repairs_and_settle_old, migrations.RunPython.noop),
    ]
