"""Site, sender, manifest and completion live in the submission; verdicts store a code and its
parameters, not a sentence; outcomes get their choices."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [("uploads", "0003_transfers_belong_to_submissions")]

    operations = [
        migrations.AlterField(
            model_name="transfer",
            name="submission",
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT,
                                    related_name="transfers", to="ingest.submission"),
        ),
        migrations.RemoveField(model_name="transfer", name="manifest"),
        migrations.RemoveField(model_name="transfer", name="site"),
        migrations.RemoveField(model_name="transfer", name="user"),
        migrations.RemoveField(model_name="studymanifest", name="completed_at"),
        migrations.RemoveField(model_name="transfer", name="reason"),
        migrations.AddField(
            model_name="transfer",
            name="params",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name="transfer",
            name="outcome",
            field=models.CharField(blank=True, choices=[
                ("stored", "Accepté"), ("duplicate", "Déjà reçu (doublon ignoré)"),
                ("refused", "Refusé"), ("mixed", "Accepté en partie")], max_length=16),
        ),
    ]
