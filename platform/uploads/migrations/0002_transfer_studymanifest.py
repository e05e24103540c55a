"""TusUpload becomes Transfer (one resumable file transfer), Manifest becomes StudyManifest;
a transfer gets the submission it belongs to."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0001_initial"),
        ("ingest", "0002_submission"),
        ("uploads", "0001_initial"),
    ]

    operations = [
        migrations.RenameModel("Manifest", "StudyManifest"),
        migrations.RenameModel("TusUpload", "Transfer"),
        migrations.RenameField("studymanifest", "upload", "submission"),
        migrations.AlterField(
            model_name="studymanifest",
            name="submission",
            field=models.OneToOneField(on_delete=django.db.models.deletion.PROTECT,
                                       related_name="manifest", to="ingest.submission"),
        ),
        migrations.AddField(
            model_name="transfer",
            name="submission",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT,
                                    related_name="transfers", to="ingest.submission"),
        ),
    ]
