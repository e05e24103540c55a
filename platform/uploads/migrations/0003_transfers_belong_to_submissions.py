"""Every transfer belongs to a Submission (its manifest's, or one of its own); a manifest's
completion becomes its submission's settled_at. One way: site and sender now live once."""

from django.db import migrations


def link_transfers_to_submissions(apps, schema_editor):
    Transfer = apps.get_model("uploads", "Transfer")
    StudyManifest = apps.get_model("uploads", "StudyManifest")
    Submission = apps.get_model("ingest", "Submission")
    for manifest in StudyManifest.objects.select_related("submission"):
        submission = manifest.submission
        submission.settled_at = manifest.completed_at
        submission.expected_instances = len(manifest.expected or []) or manifest.expected_files or None
        submission.save(update_fields=["settled_at", "expected_instances"])
        Transfer.objects.filter(manifest=manifest).update(submission=submission)
    for transfer in Transfer.objects.filter(submission=None):
        meta = transfer.metadata or {}
        priority = meta.get("priority")
        priority = priority if priority in ("routine", "urgent", "stat") else "routine"
        transfer.submission = Submission.objects.create(
            site_id=transfer.site_id, sender_id=transfer.user_id, priority=priority,
            indication=str(meta.get("indication", ""))[:2000], settled_at=transfer.finalised_at,
        )
        transfer.save(update_fields=["submission"])


class Migration(migrations.Migration):

    dependencies = [("ingest", "0003_verdict_codes"), ("uploads", "0002_transfer_studymanifest")]

    operations = [
        migrations.RunPython(link_transfers_to_submissions),
    ]
