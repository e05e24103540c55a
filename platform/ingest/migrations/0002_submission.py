"""Upload becomes Submission (one sending by a site: who, why, how urgent, a verdict per file);
a verdict gets parameters for its code."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0001_initial"),
        ("ingest", "0001_initial"),
        ("studies", "0004_lifecycle_events"),
        ("uploads", "0001_initial"),  # its Manifest points to Upload: rename after it exists
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RenameModel("Upload", "Submission"),
        migrations.RenameField("submission", "user", "sender"),
        migrations.AlterField(
            model_name="submission",
            name="sender",
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT,
                                    related_name="submissions", to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name="submission",
            name="site",
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT,
                                    related_name="submissions", to="accounts.site"),
        ),
        migrations.AlterField(
            model_name="submission",
            name="priority",
            field=models.CharField(choices=[("routine", "Routine"), ("urgent", "Urgent"),
                                            ("stat", "Extrême urgence (STAT)")],
                                   default="routine", max_length=16),
        ),
        migrations.AddField(
            model_name="submission",
            name="expected_instances",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="submission",
            name="settled_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RenameField("fileverdict", "upload", "submission"),
        migrations.AddField(
            model_name="fileverdict",
            name="params",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
